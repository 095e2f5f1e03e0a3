#include "pipeline/pacer.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <utility>

#include "core/time.h"

namespace spikeflow::pipeline {

PacerClock PacerClock::host() {
  return {core::host_now_ns, [](int64_t host_ns) {
            const int64_t wait = host_ns - core::host_now_ns();
            if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
          }};
}

Pacer::Pacer(std::span<const core::SpikeEvent> events, const PacerOptions& options,
             PacerClock clock)
    : events_(events), options_(options), clock_(std::move(clock)) {
  if (options_.interval_ns <= 0) throw std::invalid_argument("pacer: packet interval must be > 0");
  host0_ = clock_.now_ns();
  device_ns_ = options_.start_device_ns;
}

std::optional<PacedPacket> Pacer::next() {
  if (device_ns_ >= options_.end_device_ns) return std::nullopt;
  device_ns_ += options_.interval_ns;
  PacedPacket p;
  p.device_time_ns =
      options_.clamp_to_end ? std::min(device_ns_, options_.end_device_ns) : device_ns_;
  const int64_t played_ns = p.device_time_ns - options_.start_device_ns;
  if (options_.speed > 0) {
    const int64_t due =
        host0_ + static_cast<int64_t>(static_cast<double>(played_ns) / options_.speed);
    if (due > clock_.now_ns()) clock_.sleep_until_ns(due);
    p.release_host_ns = clock_.now_ns();
  } else {
    p.release_host_ns = host0_ + played_ns;
  }
  const size_t first = next_event_;
  while (next_event_ < events_.size() && events_[next_event_].t_ns <= p.device_time_ns)
    ++next_event_;
  p.events = events_.subspan(first, next_event_ - first);
  return p;
}

}  // namespace spikeflow::pipeline
