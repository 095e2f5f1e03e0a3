// Pacer: plays a time-ordered spike stream against the host clock, in packets. The one pacing
// rule shared by the UDP/TCP sender (pipeline/sender.h) and the in-process session replay
// (pipeline/session_replay.h), so it is written once:
//
//   packet k (k = 1, 2, ...) carries the device clock t_k = start + k * interval and every event
//   with t_ns <= t_k not yet released; it is released at host time host0 + (t_k - start) / speed
//   (host0: the host clock when the pacer was built; speed 0: at once). Packets go on while the
//   previous clock t_{k-1} (t_0 = start) is before end: the last packet is the first whose clock
//   reaches end, and there is none when start >= end.
//
// Every clock read and wait goes through an injectable PacerClock, so tests check the schedule on
// a virtual clock. Not thread-safe: one caller thread, which next() blocks while it waits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include "core/spike_event.h"

namespace spikeflow::pipeline {

struct PacerOptions {
  int64_t start_device_ns = 0;      ///< device clock at host0; packet 1 is one interval later
  int64_t end_device_ns = 0;        ///< the last packet is the first whose clock reaches this
  int64_t interval_ns = 1'000'000;  ///< device time per packet; must be > 0
  double speed = 0.0;               ///< x real time; <= 0: as fast as possible, never waits
  bool clamp_to_end = false;        ///< the last packet's clock is end_device_ns, not past it
};

/// The host clock the pacer reads and waits on (ns, CLOCK_MONOTONIC by default).
struct PacerClock {
  std::function<int64_t()> now_ns;
  std::function<void(int64_t host_ns)> sleep_until_ns;
  static PacerClock host();  ///< core::host_now_ns and a sleep on this thread
};

struct PacedPacket {
  int64_t device_time_ns = 0;                ///< the played device clock, t_k (or end, clamped)
  std::span<const core::SpikeEvent> events;  ///< released now; a view into the caller's events
  /// When the packet was released on the host: paced, the clock read after the wait; as fast as
  /// possible, the device clock carried onto the host clock (host0 + t_k - start), so a consumer
  /// on a virtual clock sees the session's own timing.
  int64_t release_host_ns = 0;
};

class Pacer {
 public:
  /// events sorted by t_ns; the pacer keeps a view, so they must outlive it. Reads the clock once
  /// (host0). Throws std::invalid_argument when interval_ns <= 0.
  Pacer(std::span<const core::SpikeEvent> events, const PacerOptions& options,
        PacerClock clock = PacerClock::host());

  /// The next packet, once it is due (blocks until then when paced); nullopt after the last.
  std::optional<PacedPacket> next();

  int64_t host_start_ns() const { return host0_; }

 private:
  std::span<const core::SpikeEvent> events_;
  PacerOptions options_;
  PacerClock clock_;
  int64_t host0_ = 0;
  int64_t device_ns_ = 0;  ///< clock of the last packet released (start before the first)
  size_t next_event_ = 0;
};

}  // namespace spikeflow::pipeline
