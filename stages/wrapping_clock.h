// WrappingClock32: unwraps a free-running 32-bit tick counter into a 64-bit count that keeps
// increasing across wraps; ticks_to_ns converts ticks to nanoseconds exactly.
// Used by stages::BlackrockPacketDecoder (protocol 3.x PROCTIME: 30 kHz ticks, wraps every
// 39.8 h) and stages::IntanSpikeStreamDecoder (RHX sample index). Plain value; owned and called
// by one ingest thread.
#pragma once

#include <cstdint>
#include <limits>

namespace spikeflow::stages {

class WrappingClock32 {
 public:
  /// Unwraps one reading. Readings may arrive somewhat out of order: each one is placed within
  /// [-2^31, 2^31) ticks of the newest reading so far (serial-number arithmetic), so a reading
  /// just after a wrap continues the count and a late one just before it stays behind. Returns the
  /// unwrapped count; it is negative only for a reading that lies before the very first one by
  /// more than the first one's value. Sets wrapped when this reading carried the count past a
  /// multiple of 2^32. No allocation, never throws.
  int64_t unwrap(uint32_t ticks, bool& wrapped) {
    wrapped = false;
    if (!started_) {
      started_ = true;
      last_raw_ = ticks;
      last_ = ticks;
      return last_;
    }
    const auto delta = static_cast<int32_t>(ticks - last_raw_);  // two's complement: modular
    const int64_t value = last_ + delta;
    if (delta > 0) {
      wrapped = (value >> 32) != (last_ >> 32);
      last_raw_ = ticks;
      last_ = value;
    }
    return value;
  }

  /// Forgets every reading (a reconnect: the next reading starts the count afresh).
  void reset() { *this = WrappingClock32{}; }

 private:
  bool started_ = false;
  uint32_t last_raw_ = 0;
  int64_t last_ = 0;  ///< newest unwrapped reading
};

/// True when ticks_to_ns(ticks, rate_hz) is representable: 0 <= ticks and the result stays below
/// ~292 years. A hostile stream can step the unwrapped count by 2^31 per reading, so decoders
/// check this before converting. rate_hz > 0.
constexpr bool ticks_fit_ns(int64_t ticks, int64_t rate_hz) {
  constexpr int64_t kNsPerS = 1'000'000'000;
  return ticks >= 0 && ticks / rate_hz <= std::numeric_limits<int64_t>::max() / kNsPerS - 1;
}

/// ticks at rate_hz -> ns, rounded down, exact (no floating point, no intermediate overflow for
/// any tick count below 292 years). ticks >= 0, rate_hz > 0.
constexpr int64_t ticks_to_ns(int64_t ticks, int64_t rate_hz) {
  constexpr int64_t kNsPerS = 1'000'000'000;
  return (ticks / rate_hz) * kNsPerS + (ticks % rate_hz) * kNsPerS / rate_hz;
}

}  // namespace spikeflow::stages
