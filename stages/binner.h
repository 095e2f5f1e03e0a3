// Binner: cuts the spike stream into fixed-width chunks on the device clock and decides when
// each chunk is complete.
//
// Chunk k covers device time [k*width, (k+1)*width) (core::chunk_index). A chunk closes when
//   (a) the event watermark (latest device time seen: event times and packet device_time) passes
//       its end plus the allowed lateness, or
//   (b) its host-time deadline passes: end + lateness + grace, mapped to host time through an
//       online estimate of the device->host clock offset (min over recent packets of
//       arrival_host - device_time). This is what gives a silent array a prediction on time.
// Every chunk from the first one seen onwards is emitted exactly once and in order, empty or not.
// Out-of-order events inside the lateness window land in their own chunk; events for a chunk
// already closed are counted as late and dropped; events too far ahead (max_future) are counted
// and dropped. A device clock that jumps (restart) for longer than resync_after_batches packets
// re-anchors the binner (counted).
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
  int64_t width_ns = 50'000'000;          ///< chunk width, device ns; (0, 10 s]
  int64_t lateness_ns = 2'000'000;        ///< watermark slack before closing; [0, width]
  int64_t deadline_grace_ns = 10'000'000; ///< extra host slack for the deadline; [0, 10 s]
  int64_t max_future_ns = 1'000'000'000;  ///< events this far past the oldest open chunk drop
  bool deadline_enabled = true;
  int resync_after_batches = 50;          ///< consecutive unusable packets before re-anchoring
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
  uint64_t events_binned = 0;
  uint64_t late_events = 0;         ///< for a chunk already closed
  uint64_t future_events = 0;       ///< beyond max_future
  uint64_t future_packet_times = 0; ///< packet device_time beyond max_future (ignored)
  uint64_t chunks_by_watermark = 0;
  uint64_t chunks_by_deadline = 0;
  uint64_t chunks_flushed = 0;      ///< closed at end of stream
  uint64_t resyncs = 0;             ///< device clock jumped; binner re-anchored
};

class Binner {
 public:
  /// Throws std::invalid_argument listing every problem in options.
  explicit Binner(const BinnerOptions& options);

  /// Bins one packet's events; appends chunks that the advanced watermark closes.
  void push(const core::EventBatch& batch, std::vector<core::RawChunk>& closed);

  /// Closes chunks whose host deadline is at or before host_now_ns.
  void tick(int64_t host_now_ns, std::vector<core::RawChunk>& closed);

  /// End of stream: closes every open chunk up to the one holding the watermark.
  void flush(int64_t host_now_ns, std::vector<core::RawChunk>& closed);

  /// Host time at which the oldest open chunk's deadline passes; -1 if not started.
  int64_t next_deadline_host_ns() const;
  /// The grace in force now (deadline_grace_ns, or more under adaptive_grace).
  int64_t current_grace_ns() const;

  bool started() const { return started_; }
  const BinnerStats& stats() const { return stats_; }
  const BinnerOptions& options() const { return options_; }

 private:
  size_t slot(int64_t seq) const;
  void anchor(int64_t device_ns);
  void close_oldest(int64_t trigger_host_ns, uint32_t flags, std::vector<core::RawChunk>& closed);
  void observe_offset(int64_t arrival_host_ns, int64_t device_ns);
  int64_t offset_ns() const;

  BinnerOptions options_;
  BinnerStats stats_;
  std::vector<core::RawChunk> ring_;  ///< open chunks next_seq_ .. next_seq_+ring_.size()-1
  bool started_ = false;
  int64_t next_seq_ = 0;              ///< oldest open chunk
  int64_t watermark_ns_ = INT64_MIN;
  bool pending_late_flag_ = false;    ///< late events seen since the last close
  int unusable_batches_ = 0;
  // Device->host offset estimate: minimum of (arrival - device_time) over two host windows.
  int64_t window_start_host_ns_ = 0;
  int64_t window_min_ = INT64_MAX;
  int64_t prev_window_min_ = INT64_MAX;
  double jitter_peak_ns_ = 0;  ///< decaying peak of (arrival - device_time) - offset
};

}  // namespace spikeflow::stages
