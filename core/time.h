// Host clock and chunk arithmetic shared by the live path, replay and training, so that all three
// cut time into chunks identically.
#pragma once

#include <chrono>
#include <cstdint>

namespace spikeflow::core {

/// Host monotonic time in ns (CLOCK_MONOTONIC via steady_clock). Comparable across processes on
/// one machine, which is what end-to-end latency measurements rely on.
inline int64_t host_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

/// Index of the chunk holding device time t_ns; chunk k covers [k*width_ns, (k+1)*width_ns).
/// Floor division, so negative times map to negative chunks consistently.
inline int64_t chunk_index(int64_t t_ns, int64_t width_ns) {
  int64_t q = t_ns / width_ns;
  if ((t_ns % width_ns != 0) && (t_ns < 0)) --q;
  return q;
}

/// Offset of a spike inside its chunk, in seconds: the token's time coordinate.
inline float offset_in_chunk_s(int64_t t_ns, int64_t chunk_start_ns) {
  return static_cast<float>(static_cast<double>(t_ns - chunk_start_ns) * 1e-9);
}

constexpr int64_t kNsPerMs = 1'000'000;
constexpr int64_t kNsPerS = 1'000'000'000;

}  // namespace spikeflow::core
