#include "stages/binner.h"

#include <algorithm>
#include <stdexcept>

#include "core/chunk_flags.h"
#include "core/time.h"

namespace spikeflow::stages {

std::vector<std::string> BinnerOptions::validate() const {
  std::vector<std::string> e;
  constexpr int64_t k10s = 10 * core::kNsPerS;
  constexpr int64_t k60s = 60 * core::kNsPerS;
  if (width_ns <= 0 || width_ns > k10s) e.push_back("width must be in (0, 10000] ms");
  if (lateness_ns < 0 || lateness_ns > width_ns) e.push_back("lateness must be in [0, width]");
  if (deadline_grace_ns < 0 || deadline_grace_ns > k10s)
    e.push_back("deadline grace must be in [0, 10000] ms");
  if (max_future_ns < width_ns || max_future_ns > k60s)
    e.push_back("max_future must be in [width, 60000] ms");
  if (resync_after_batches < 1 || resync_after_batches > 1000)
    e.push_back("resync_after_packets must be in [1, 1000]");
  if (clock_jump_ns <= 0) e.push_back("clock_jump must be > 0");
  if (no_source_timeout_ns <= 0 || no_source_timeout_ns > k60s)
    e.push_back("no_source_timeout must be in (0, 60000] ms");
  if (offset_window_ns <= 0) e.push_back("offset_window must be > 0");
  if (max_grace_ns < deadline_grace_ns)
    e.push_back("max grace must be at least the deadline grace");
  return e;
}

int64_t reference_time_ns(const core::EventBatch& batch) {
  if (batch.device_time_ns >= 0) return batch.device_time_ns;
  int64_t ref = -1;
  for (const auto& e : batch.events) ref = std::max(ref, e.t_ns);
  return ref;
}

Binner::Binner(const BinnerOptions& options) : options_(options) {
  auto errors = options_.validate();
  if (!errors.empty()) {
    std::string msg = "binner options invalid:";
    for (const auto& s : errors) msg += "\n  - " + s;
    throw std::invalid_argument(msg);
  }
  options_.clock_jump_ns = std::min(options_.clock_jump_ns, options_.max_future_ns);
  // Open chunks span [oldest, oldest + max_future]: one slot per chunk plus the one being filled.
  ring_.resize(static_cast<size_t>(options_.max_future_ns / options_.width_ns) + 2);
  suspects_.reserve(static_cast<size_t>(options_.resync_after_batches));
}

size_t Binner::slot(int64_t seq) const {
  const auto n = static_cast<int64_t>(ring_.size());
  return static_cast<size_t>(((seq % n) + n) % n);
}

int64_t Binner::horizon_ns() const {
  return (next_seq_ + static_cast<int64_t>(ring_.size()) - 1) * options_.width_ns;
}

uint64_t Binner::held_events() const {
  uint64_t n = 0;
  for (const auto& b : suspects_) n += b.events.size();
  return n;
}

void Binner::anchor(const core::EventBatch& batch) {
  int64_t t0 = batch.device_time_ns;
  for (const auto& e : batch.events) t0 = (t0 < 0) ? e.t_ns : std::min(t0, e.t_ns);
  next_seq_ = core::chunk_index(t0, options_.width_ns);
  for (auto& c : ring_) c.events.clear();
  watermark_ns_ = t0;
  source_time_ns_ = INT64_MIN;
  started_ = true;
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

Binner::Verdict Binner::classify(int64_t ref_ns, int64_t arrival_host_ns) const {
  if (ref_ns >= horizon_ns()) return Verdict::kAhead;
  if (source_time_ns_ == INT64_MIN) return Verdict::kAccept;
  if (ref_ns < source_time_ns_ - options_.clock_jump_ns) return Verdict::kBehind;
  // A step ahead within max_future is accepted: the chunks it skips close empty on the
  // watermark, and the clock-offset minimum follows the new clock at once. (Judging steps ahead
  // by the host's pace would take a sender replaying faster than real time for a jumping clock.)
  (void)arrival_host_ns;
  return Verdict::kAccept;
}

bool Binner::on_previous_clock(int64_t ref_ns, int64_t arrival_host_ns) const {
  if (epoch_ == 0 || arrival_host_ns > previous_clock_until_ns_) return false;
  const int64_t projected = previous_source_time_ns_ +
                            std::max<int64_t>(0, arrival_host_ns - previous_source_arrival_ns_);
  return ref_ns >= previous_source_time_ns_ - options_.clock_jump_ns &&
         ref_ns <= projected + options_.clock_jump_ns;
}

void Binner::push(const core::EventBatch& batch, std::vector<core::RawChunk>& closed) {
  stats_.events_in += batch.events.size();
  last_packet_host_ns_ = std::max(last_packet_host_ns_, batch.arrival_host_ns);
  const int64_t ref = reference_time_ns(batch);
  if (ref < 0) {
    // Carries no time at all (only events before the device clock's origin can get here): they
    // belong to no chunk.
    stats_.late_events += batch.events.size();
    return;
  }
  if (!started_) {
    anchor(batch);
    accept(batch, closed);
    return;
  }
  if (on_previous_clock(ref, batch.arrival_host_ns)) {
    // Sent before the clock jump, overtaken on the way by packets on the new clock.
    stats_.stale_events += batch.events.size();
    ++stats_.stale_packets;
    return;
  }
  const Verdict verdict = classify(ref, batch.arrival_host_ns);
  if (verdict == Verdict::kAccept) {
    release_suspects();  // the clock did not jump after all
    if (lagging_confirmed(batch, ref)) {
      // A jump back hidden by a silence: the clock now runs behind where deadlines put it.
      suspects_.push_back(batch);
      start_new_epoch(Verdict::kBehind, closed);
      return;
    }
    accept(batch, closed);
    return;
  }
  ++stats_.suspect_packets;
  if (!suspects_.empty()) {
    // Suspects confirm a jump only if they agree with each other: same direction, each on the
    // clock of the previous one (within clock_jump of it, allowing for the host time between).
    const auto& prev = suspects_.back();
    const int64_t dt = std::max<int64_t>(0, batch.arrival_host_ns - prev.arrival_host_ns);
    const int64_t step = ref - reference_time_ns(prev);
    if (verdict != suspect_kind_ || step < -options_.clock_jump_ns ||
        step > dt + options_.clock_jump_ns) {
      release_suspects();
    }
  }
  suspects_.push_back(batch);
  suspect_kind_ = verdict;
  if (suspects_.size() >= static_cast<size_t>(options_.resync_after_batches))
    start_new_epoch(verdict, closed);
}

bool Binner::lagging_confirmed(const core::EventBatch& batch, int64_t ref) {
  // A packet whose clock-offset sample (arrival - device time) exceeds the estimate by more
  // than clock_jump arrived that much later than the device clock says it should. A host stall
  // does that to the packets queued meanwhile, but only until the queue is drained; a device
  // clock that went back while the source was silent (so that no packet was behind the source
  // time) does it to every packet from then on. Confirmed after resync_after_packets such
  // packets spanning clock_jump of host time with none in between on time.
  const int64_t off = offset_ns();
  if (off == INT64_MAX || batch.arrival_host_ns - ref <= off + options_.clock_jump_ns) {
    lag_count_ = 0;
    return false;
  }
  if (lag_count_++ == 0) lag_since_ns_ = batch.arrival_host_ns;
  return lag_count_ >= options_.resync_after_batches &&
         batch.arrival_host_ns - lag_since_ns_ >= options_.clock_jump_ns;
}

void Binner::accept(const core::EventBatch& batch, std::vector<core::RawChunk>& closed) {
  bin_events(batch);
  if (batch.device_time_ns >= 0) {
    if (batch.device_time_ns >= horizon_ns()) {
      ++stats_.future_packet_times;  // only reachable for a packet that anchored the binner
    } else {
      watermark_ns_ = std::max(watermark_ns_, batch.device_time_ns);
      observe_offset(batch.arrival_host_ns, batch.device_time_ns);
    }
  }
  const int64_t ref = reference_time_ns(batch);
  if (ref >= source_time_ns_) {
    source_time_ns_ = ref;
    source_arrival_ns_ = batch.arrival_host_ns;
  }
  close_by_watermark(batch.arrival_host_ns, closed);
}

void Binner::bin_events(const core::EventBatch& batch) {
  const int64_t w = options_.width_ns;
  const int64_t horizon = horizon_ns();  // first dropped ns
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
    ring_[slot(seq)].events.push_back(e);
    ++stats_.events_binned;
    watermark_ns_ = std::max(watermark_ns_, e.t_ns);
  }
}

void Binner::release_suspects() {
  // Not a jump after all: the held packets disagreed with the source's clock and were not
  // confirmed, so neither their times nor their events are trusted (a corrupt packet, or one so
  // delayed that its chunks are long closed). Counted, never binned.
  for (const auto& b : suspects_) stats_.stray_events += b.events.size();
  suspects_.clear();
}

void Binner::start_new_epoch(Verdict why, std::vector<core::RawChunk>& closed) {
  std::vector<core::EventBatch> held;
  held.swap(suspects_);
  close_open(held.back().arrival_host_ns, closed);  // the old epoch ends with what it holds
  // Packets of the old clock still on their way (reordered) must not land in the new epoch.
  previous_source_time_ns_ = source_time_ns_;
  previous_source_arrival_ns_ = source_arrival_ns_;
  previous_clock_until_ns_ =
      held.back().arrival_host_ns + 2 * options_.clock_jump_ns + options_.max_future_ns;
  lag_count_ = 0;
  ++epoch_;
  ++stats_.resyncs;
  ++(why == Verdict::kBehind ? stats_.clock_jumps_back : stats_.clock_jumps_forward);
  // Anchor on the earliest time any held packet speaks for (they may be reordered).
  core::EventBatch first;
  first.device_time_ns = INT64_MAX;
  for (const auto& b : held) {
    if (b.device_time_ns >= 0)
      first.device_time_ns = std::min(first.device_time_ns, b.device_time_ns);
    for (const auto& e : b.events) first.device_time_ns = std::min(first.device_time_ns, e.t_ns);
  }
  anchor(first);
  pending_new_epoch_ = true;
  for (const auto& b : held) accept(b, closed);
  suspects_.swap(held);
  suspects_.clear();  // keeps the capacity
}

void Binner::close_by_watermark(int64_t trigger_host_ns, std::vector<core::RawChunk>& closed) {
  while ((next_seq_ + 1) * options_.width_ns + options_.lateness_ns <= watermark_ns_) {
    ++stats_.chunks_by_watermark;
    close_oldest(trigger_host_ns, 0, closed);
  }
}

void Binner::tick(int64_t host_now_ns, std::vector<core::RawChunk>& closed) {
  // Bounded work per tick: at most one ring's worth of chunks (after a long stall the rest
  // close on the following ticks, still in order).
  for (size_t i = 0; i < ring_.size(); ++i) {
    const int64_t deadline = next_deadline_host_ns();
    if (deadline < 0 || deadline > host_now_ns) return;
    uint32_t flags = static_cast<uint32_t>(core::ChunkFlag::kClosedByDeadline);
    if (last_packet_host_ns_ != INT64_MIN &&
        host_now_ns - last_packet_host_ns_ > options_.no_source_timeout_ns) {
      core::set_flag(flags, core::ChunkFlag::kNoSource);
      ++stats_.no_source_chunks;
    }
    ++stats_.chunks_by_deadline;
    close_oldest(host_now_ns, flags, closed);
  }
}

void Binner::flush(int64_t host_now_ns, std::vector<core::RawChunk>& closed) {
  release_suspects();
  close_open(host_now_ns, closed);
}

void Binner::close_open(int64_t host_now_ns, std::vector<core::RawChunk>& closed) {
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
  out.epoch = epoch_;
  out.start_ns = next_seq_ * options_.width_ns;
  out.end_ns = out.start_ns + options_.width_ns;
  out.flags = flags;
  if (open.events.empty()) core::set_flag(out.flags, core::ChunkFlag::kEmpty);
  if (pending_late_flag_) core::set_flag(out.flags, core::ChunkFlag::kHadLateEvents);
  if (pending_new_epoch_) core::set_flag(out.flags, core::ChunkFlag::kNewEpoch);
  pending_late_flag_ = false;
  pending_new_epoch_ = false;
  const size_t expected = open.events.size();
  out.events.swap(open.events);
  open.events.reserve(expected);  // the slot is reused for chunk next_seq_ + ring size
  out.timing.trigger_arrival_ns = trigger_host_ns;
  ++next_seq_;
  watermark_ns_ = std::max(watermark_ns_, out.end_ns - 1);
  closed.push_back(std::move(out));
}

}  // namespace spikeflow::stages
