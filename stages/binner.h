// Binner: cuts the spike stream into fixed-width chunks on the device clock and decides when
// each chunk is complete. The live contract (README "The live contract") starts here.
//
// Chunk k of an epoch covers device time [k*width, (k+1)*width) (core::chunk_index). A chunk
// closes when
//   (a) the event watermark (latest device time seen: event times and packet device_time) passes
//       its end plus the allowed lateness, or
//   (b) its host-time deadline passes: end + lateness + grace, mapped to host time through an
//       online estimate of the device->host clock offset (min over recent packets of
//       arrival_host - device_time). This is what gives a silent array a prediction on time.
// Within an epoch every chunk from the first one seen onwards is emitted exactly once and in
// order, empty or not. Out-of-order events inside the lateness window land in their own chunk;
// events for a chunk already closed are counted as late and dropped (the next chunk is flagged);
// events too far ahead (max_future) are counted and dropped.
//
// Epochs. The device clock can jump: a restarted NSP or Intan board starts again near 0, a
// misconfigured one leaps ahead. Each packet's reference time (its device_time, else its latest
// event) is compared with the source time (the latest reference time of accepted packets, which
// deadline closes do NOT advance, so a host stall that closed chunks early never looks like a
// jump):
//   - behind the source time by more than clock_jump, or past the open horizon (max_future):
//     the packet is a *suspect* and is held, not binned (a smaller step ahead just skips chunks,
//     which close empty);
//   - resync_after_packets suspects in a row that agree with each other (each within clock_jump of
//     the previous) confirm a jump: the open chunks of the old epoch are flushed (flag
//     end_of_stream), the epoch counter goes up, the binner anchors on the new clock and bins the
//     held packets there; the first chunk of the new epoch carries kNewEpoch (the decoder resets
//     its recurrent state on it). Detection therefore takes resync_after_packets packets;
//   - an accepted packet ends the suspicion: the held packets' events are counted as stray and
//     dropped — a corrupt packet costs no epoch and puts nothing in a chunk;
//   - after a jump, packets still on the old clock (overtaken in the network by new ones) are
//     recognised for a while and counted as stale, so they cannot land in the new epoch.
// A jump back while the source was silent can leave the new clock ahead of the last source time
// (so no packet is "behind"), yet behind where the deadlines went: every packet then arrives
// more than clock_jump later than the clock offset estimate says. resync_after_packets such
// packets spanning clock_jump of host time confirm that jump too (a host stall makes only the
// packets queued during it look late, and they drain at once).
// Meanwhile deadlines keep closing the old epoch's chunks on the host schedule: never silence.
// Deadline-closed chunks carry kNoSource when no packet at all (heartbeats count) arrived for
// no_source_timeout.
//
// Conservation: every event pushed is in exactly one of: binned into a chunk, late, future, or
// stray, stale, or held as a suspect (stats().events_in == events_binned + late_events +
// future_events + stray_events + stale_events + held_events(); checked after every step by the
// contract simulator, tests/sim).
//
// Plain class: no threads, no I/O, no locks. Called by one thread at a time (the pipeline's
// serial binner node). Closed chunks are appended to the caller's vector.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/event_batch.h"
#include "core/raw_chunk.h"

namespace spikeflow::stages {

struct BinnerOptions {
  int64_t width_ns = 50'000'000;           ///< chunk width, device ns; (0, 10 s]
  int64_t lateness_ns = 2'000'000;         ///< watermark slack before closing; [0, width]
  int64_t deadline_grace_ns = 10'000'000;  ///< extra host slack for the deadline; [0, 10 s]
  int64_t max_future_ns = 1'000'000'000;   ///< events this far past the oldest open chunk drop
  bool deadline_enabled = true;
  /// Consecutive, mutually consistent suspect packets that confirm a clock jump; [1, 1000].
  int resync_after_batches = 3;
  /// A packet this far behind the source time is a clock-jump suspect; smaller steps back are
  /// reordering and their events are late. An undetected step back of up to this much can delay
  /// the deadline schedule by as much, once. Clamped to max_future. > 0.
  int64_t clock_jump_ns = 200'000'000;
  /// Deadline chunks are flagged kNoSource after this long without any packet; [width, 60 s].
  int64_t no_source_timeout_ns = 250'000'000;
  int64_t offset_window_ns = 5'000'000'000;  ///< host window of the clock-offset minimum
  /// Adaptive grace: the deadline slack grows to 1.5x the recent peak transit jitter (arrival
  /// delay beyond the best seen), so a sender slowed by load does not lose spikes to early
  /// closes; it never goes below deadline_grace_ns nor above max_grace_ns.
  bool adaptive_grace = true;
  int64_t max_grace_ns = 25'000'000;

  /// Every problem with the options, empty when valid.
  std::vector<std::string> validate() const;
};

struct BinnerStats {
  uint64_t events_in = 0;  ///< events pushed (the conservation total)
  uint64_t events_binned = 0;
  uint64_t late_events = 0;          ///< for a chunk already closed
  uint64_t future_events = 0;        ///< beyond max_future
  uint64_t future_packet_times = 0;  ///< packet device_time beyond max_future (ignored)
  uint64_t suspect_packets = 0;      ///< packets held as clock-jump suspects
  uint64_t stray_events = 0;         ///< in suspects that a later accepted packet disproved
  uint64_t stale_packets = 0;        ///< sent on the previous epoch's clock, arrived after the jump
  uint64_t stale_events = 0;         ///< ... their events
  uint64_t chunks_by_watermark = 0;
  uint64_t chunks_by_deadline = 0;
  uint64_t chunks_flushed = 0;    ///< closed at end of stream or end of an epoch
  uint64_t no_source_chunks = 0;  ///< deadline chunks flagged kNoSource
  uint64_t resyncs = 0;           ///< epochs started after the first (= jumps back + forward)
  uint64_t clock_jumps_back = 0;
  uint64_t clock_jumps_forward = 0;
};

class Binner {
 public:
  /// Throws std::invalid_argument listing every problem in options.
  explicit Binner(const BinnerOptions& options);

  /// Bins one packet's events; appends chunks that the advanced watermark closes (and, when the
  /// packet confirms a clock jump, the old epoch's flushed chunks and the new epoch's first ones).
  void push(const core::EventBatch& batch, std::vector<core::RawChunk>& closed);

  /// Closes chunks whose host deadline is at or before host_now_ns.
  void tick(int64_t host_now_ns, std::vector<core::RawChunk>& closed);

  /// End of stream: bins held suspects as usual, closes every open chunk up to the watermark.
  void flush(int64_t host_now_ns, std::vector<core::RawChunk>& closed);

  /// Host time at which the oldest open chunk's deadline passes; -1 if not started.
  int64_t next_deadline_host_ns() const;
  /// The device->host clock offset estimate (host = device + offset); INT64_MAX when unknown.
  int64_t offset_estimate_ns() const { return offset_ns(); }
  /// The grace in force now (deadline_grace_ns, or more under adaptive_grace).
  int64_t current_grace_ns() const;

  bool started() const { return started_; }
  uint32_t epoch() const { return epoch_; }
  /// Index of the oldest open chunk (the next one to close) in the current epoch.
  int64_t next_seq() const { return next_seq_; }
  /// Events inside held suspect packets (part of the conservation identity).
  uint64_t held_events() const;
  const BinnerStats& stats() const { return stats_; }
  const BinnerOptions& options() const { return options_; }

 private:
  enum class Verdict { kAccept, kBehind, kAhead };
  Verdict classify(int64_t ref_ns, int64_t arrival_host_ns) const;
  bool on_previous_clock(int64_t ref_ns, int64_t arrival_host_ns) const;
  bool lagging_confirmed(const core::EventBatch& batch, int64_t ref);
  size_t slot(int64_t seq) const;
  void anchor(const core::EventBatch& batch);
  void accept(const core::EventBatch& batch, std::vector<core::RawChunk>& closed);
  void bin_events(const core::EventBatch& batch);
  void release_suspects();
  void start_new_epoch(Verdict why, std::vector<core::RawChunk>& closed);
  void close_by_watermark(int64_t trigger_host_ns, std::vector<core::RawChunk>& closed);
  void close_open(int64_t host_now_ns, std::vector<core::RawChunk>& closed);
  void close_oldest(int64_t trigger_host_ns, uint32_t flags, std::vector<core::RawChunk>& closed);
  void observe_offset(int64_t arrival_host_ns, int64_t device_ns);
  int64_t offset_ns() const;
  int64_t horizon_ns() const;

  BinnerOptions options_;
  BinnerStats stats_;
  std::vector<core::RawChunk> ring_;  ///< open chunks next_seq_ .. next_seq_+ring_.size()-1
  bool started_ = false;
  uint32_t epoch_ = 0;
  bool pending_new_epoch_ = false;  ///< the next chunk closed is the first of a new epoch
  int64_t next_seq_ = 0;            ///< oldest open chunk
  int64_t watermark_ns_ = INT64_MIN;
  int64_t source_time_ns_ = INT64_MIN;   ///< latest reference time of accepted packets
  int64_t source_arrival_ns_ = 0;        ///< host arrival of the packet that set it
  int64_t previous_source_time_ns_ = 0;  ///< the previous epoch's clock, for stale packets
  int64_t previous_source_arrival_ns_ = 0;
  int64_t previous_clock_until_ns_ = 0;  ///< host time after which it is forgotten
  int lag_count_ = 0;         ///< consecutive packets far later than the clock offset says
  int64_t lag_since_ns_ = 0;  ///< arrival of the first of them
  int64_t last_packet_host_ns_ = INT64_MIN;
  bool pending_late_flag_ = false;          ///< late events seen since the last close
  std::vector<core::EventBatch> suspects_;  ///< held packets, oldest first
  Verdict suspect_kind_ = Verdict::kAccept;
  // Device->host offset estimate: minimum of (arrival - device_time) over two host windows.
  int64_t window_start_host_ns_ = 0;
  int64_t window_min_ = INT64_MAX;
  int64_t prev_window_min_ = INT64_MAX;
  double jitter_peak_ns_ = 0;  ///< decaying peak of (arrival - device_time) - offset
};

/// The time a packet speaks for: its device_time when it has one, else its latest event; -1 when
/// it carries neither.
int64_t reference_time_ns(const core::EventBatch& batch);

}  // namespace spikeflow::stages
