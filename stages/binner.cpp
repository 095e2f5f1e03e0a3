#include "stages/binner.h"

#include <algorithm>
#include <stdexcept>

#include "core/chunk_flags.h"
#include "core/time.h"

namespace spikeflow::stages {

std::vector<std::string> BinnerOptions::validate() const {
  std::vector<std::string> e;
  constexpr int64_t k10s = 10 * core::kNsPerS;
  if (width_ns <= 0 || width_ns > k10s) e.push_back("width must be in (0, 10000] ms");
  if (lateness_ns < 0 || lateness_ns > width_ns) e.push_back("lateness must be in [0, width]");
  if (deadline_grace_ns < 0 || deadline_grace_ns > k10s) e.push_back("deadline grace must be in [0, 10000] ms");
  if (max_future_ns < width_ns || max_future_ns > 60 * core::kNsPerS) {
    e.push_back("max_future must be in [width, 60000] ms");
  }
  if (resync_after_batches < 1) e.push_back("resync_after_batches must be >= 1");
  if (offset_window_ns <= 0) e.push_back("offset_window must be > 0");
  if (max_grace_ns < deadline_grace_ns) e.push_back("max grace must be at least the deadline grace");
  return e;
}

Binner::Binner(const BinnerOptions& options) : options_(options) {
  auto errors = options_.validate();
  if (!errors.empty()) {
    std::string msg = "binner options invalid:";
    for (const auto& s : errors) msg += "\n  - " + s;
    throw std::invalid_argument(msg);
  }
  // Open chunks span [oldest, oldest + max_future]: one slot per chunk plus the one being filled.
  ring_.resize(static_cast<size_t>(options_.max_future_ns / options_.width_ns) + 2);
}

size_t Binner::slot(int64_t seq) const {
  const auto n = static_cast<int64_t>(ring_.size());
  return static_cast<size_t>(((seq % n) + n) % n);
}

void Binner::anchor(int64_t device_ns) {
  next_seq_ = core::chunk_index(device_ns, options_.width_ns);
  for (auto& c : ring_) c.events.clear();
  watermark_ns_ = device_ns;
  started_ = true;
  unusable_batches_ = 0;
  // A new device clock means a new device->host offset: forget the old windows, so the first
  // packets after the re-anchor set the estimate (a stale minimum would put deadlines in the past).
  window_min_ = INT64_MAX;
  prev_window_min_ = INT64_MAX;
}

void Binner::observe_offset(int64_t arrival_host_ns, int64_t device_ns) {
  if (arrival_host_ns - window_start_host_ns_ > options_.offset_window_ns) {
    prev_window_min_ = window_min_;
    window_min_ = INT64_MAX;
    window_start_host_ns_ = arrival_host_ns;
  }
  const int64_t sample = arrival_host_ns - device_ns;
  window_min_ = std::min(window_min_, sample);
  // Peak jitter decays by half over ~700 packets (~0.7 s at 1 kHz): a burst of lag widens the
  // deadline for a while, then it comes back to the configured grace.
  const double jitter = static_cast<double>(sample - offset_ns());
  jitter_peak_ns_ = std::max(jitter, jitter_peak_ns_ * 0.999);
}

int64_t Binner::current_grace_ns() const {
  if (!options_.adaptive_grace) return options_.deadline_grace_ns;
  const auto adaptive = static_cast<int64_t>(1.5 * jitter_peak_ns_);
  return std::clamp(adaptive, options_.deadline_grace_ns, options_.max_grace_ns);
}

int64_t Binner::offset_ns() const { return std::min(window_min_, prev_window_min_); }

int64_t Binner::next_deadline_host_ns() const {
  if (!started_ || !options_.deadline_enabled) return -1;
  const int64_t off = offset_ns();
  if (off == INT64_MAX) return -1;
  return (next_seq_ + 1) * options_.width_ns + options_.lateness_ns + current_grace_ns() + off;
}

void Binner::push(const core::EventBatch& batch, std::vector<core::RawChunk>& closed) {
  if (!started_) {
    int64_t t0 = batch.device_time_ns;
    for (const auto& e : batch.events) t0 = (t0 < 0) ? e.t_ns : std::min(t0, e.t_ns);
    if (t0 < 0) return;  // nothing to anchor on yet
    anchor(t0);
  }
  const int64_t w = options_.width_ns;
  const int64_t horizon = (next_seq_ + static_cast<int64_t>(ring_.size()) - 1) * w;  // first dropped ns
  bool usable = batch.events.empty();
  for (const auto& e : batch.events) {
    const int64_t seq = core::chunk_index(e.t_ns, w);
    if (seq < next_seq_) {
      ++stats_.late_events;
      pending_late_flag_ = true;
      continue;
    }
    if (e.t_ns >= horizon) {
      ++stats_.future_events;
      continue;
    }
    usable = true;
    ring_[slot(seq)].events.push_back(e);
    ++stats_.events_binned;
    watermark_ns_ = std::max(watermark_ns_, e.t_ns);
  }
  if (batch.device_time_ns >= 0) {
    if (batch.device_time_ns >= horizon) {
      ++stats_.future_packet_times;
      usable = false;
    } else {
      watermark_ns_ = std::max(watermark_ns_, batch.device_time_ns);
      observe_offset(batch.arrival_host_ns, batch.device_time_ns);
    }
  }
  if (!usable) {
    // Every event late or in the far future, or an impossible packet time: a clock jump if it
    // persists. Re-anchor on the new clock after resync_after_batches such packets in a row.
    if (++unusable_batches_ >= options_.resync_after_batches) {
      flush(batch.arrival_host_ns, closed);
      ++stats_.resyncs;
      started_ = false;
      push(batch, closed);
    }
    return;
  }
  unusable_batches_ = 0;
  while ((next_seq_ + 1) * w + options_.lateness_ns <= watermark_ns_) {
    ++stats_.chunks_by_watermark;
    close_oldest(batch.arrival_host_ns, 0, closed);
  }
}

void Binner::tick(int64_t host_now_ns, std::vector<core::RawChunk>& closed) {
  // Bounded work per tick: at most one ring's worth of chunks (after a long stall the rest
  // close on the following ticks, still in order).
  for (size_t i = 0; i < ring_.size(); ++i) {
    const int64_t deadline = next_deadline_host_ns();
    if (deadline < 0 || deadline > host_now_ns) return;
    ++stats_.chunks_by_deadline;
    close_oldest(host_now_ns, static_cast<uint32_t>(core::ChunkFlag::kClosedByDeadline), closed);
  }
}

void Binner::flush(int64_t host_now_ns, std::vector<core::RawChunk>& closed) {
  if (!started_) return;
  const int64_t last = core::chunk_index(watermark_ns_, options_.width_ns);
  while (next_seq_ <= last) {
    ++stats_.chunks_flushed;
    close_oldest(host_now_ns, static_cast<uint32_t>(core::ChunkFlag::kEndOfStream), closed);
  }
}

void Binner::close_oldest(int64_t trigger_host_ns, uint32_t flags,
                          std::vector<core::RawChunk>& closed) {
  core::RawChunk& open = ring_[slot(next_seq_)];
  core::RawChunk out;
  out.seq = next_seq_;
  out.start_ns = next_seq_ * options_.width_ns;
  out.end_ns = out.start_ns + options_.width_ns;
  out.flags = flags;
  if (open.events.empty()) core::set_flag(out.flags, core::ChunkFlag::kEmpty);
  if (pending_late_flag_) core::set_flag(out.flags, core::ChunkFlag::kHadLateEvents);
  pending_late_flag_ = false;
  const size_t expected = open.events.size();
  out.events.swap(open.events);
  open.events.reserve(expected);  // the slot is reused for chunk next_seq_ + ring size
  out.timing.trigger_arrival_ns = trigger_host_ns;
  ++next_seq_;
  watermark_ns_ = std::max(watermark_ns_, out.end_ns - 1);
  closed.push_back(std::move(out));
}

}  // namespace spikeflow::stages
