// NativePacketDecoder: datagram bytes -> EventBatch, validating every field of the native format
// (stages/native_packet.h). Malformed datagrams and bad events are dropped and counted by
// reason; sequence gaps, duplicates and reordering are tracked per stream.
// Owned and called by one ingest thread; stats() may be read by that thread only (the pipeline
// copies it out for reporting).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <unordered_map>

#include "core/event_batch.h"
#include "stages/ingest_stats.h"
#include "stages/native_packet.h"

namespace spikeflow::stages {

class NativePacketDecoder {
 public:
  /// Decodes one datagram. On success fills out (events appended after clearing; arrival time
  /// and device time set) and returns true; on a malformed datagram counts the reason and returns
  /// false. Duplicate packets return false. Never throws, no allocation once out has capacity.
  bool decode(std::span<const uint8_t> datagram, int64_t arrival_host_ns, core::EventBatch& out);

  const IngestStats& stats() const { return stats_; }

 private:
  struct StreamState {
    uint64_t next_expected = 0;
    uint64_t seen_mask = 0;  ///< bit i: sequence next_expected-1-i was seen
    /// Device time of each sequence number in the window (slot = sequence % 64): a duplicate
    /// is the same packet again, so it carries the same device time; a number seen before with
    /// another device time means the sender restarted its numbering.
    std::array<int64_t, 64> device_time{};
  };
  /// Returns false when the packet is a duplicate.
  bool track_sequence(uint32_t stream_id, uint64_t sequence, int64_t device_time_ns);
  void restart(StreamState& s, uint64_t sequence, int64_t device_time_ns);

  IngestStats stats_;
  std::unordered_map<uint32_t, StreamState> streams_;
};

}  // namespace spikeflow::stages
