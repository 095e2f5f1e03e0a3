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
#include "stages/native_packet.h"

namespace spikeflow::stages {

struct IngestStats {
  uint64_t packets_accepted = 0;
  uint64_t events_accepted = 0;
  uint64_t heartbeats = 0;                 ///< accepted packets with no events
  std::array<uint64_t, static_cast<size_t>(PacketDrop::kCount)> packet_drops{};
  std::array<uint64_t, static_cast<size_t>(EventDrop::kCount)> event_drops{};
  uint64_t packets_lost = 0;               ///< sequence gaps (packets never seen)
  uint64_t packets_duplicate = 0;          ///< seen before: dropped
  uint64_t packets_reordered = 0;          ///< arrived after a later one: accepted
  uint64_t stream_restarts = 0;            ///< sequence jumped back by >= 64: numbering restarted

  // Counters of the other ingest formats (stages/blackrock_packet_decoder.h,
  // stages/intan_spike_stream.h, stages/native_stream_framer.h); zero for native UDP.
  std::array<uint64_t, static_cast<size_t>(FormatPacketDrop::kCount)> format_packet_drops{};
  std::array<uint64_t, static_cast<size_t>(FormatEventDrop::kCount)> format_event_drops{};
  uint64_t packets_skipped = 0;  ///< well-formed packets that carry no spikes and no usable clock
                                 ///< (Blackrock continuous, digital/analog input, ...): not errors
  uint64_t clock_wraps = 0;      ///< 32-bit device clock wrapped (Blackrock 3.x, Intan); time
                                 ///< keeps increasing across it
  uint64_t resync_bytes = 0;     ///< Intan: bytes skipped while looking for the next record magic

  uint64_t connections = 0;      ///< TCP connections accepted (set by the pipeline's TCP ingest)
  uint64_t disconnects = 0;      ///< TCP connections closed by the peer or dropped after an error

  /// Every dropped packet / event, all formats and reasons.
  uint64_t packets_dropped() const;
  uint64_t events_dropped() const;
  /// Adds every counter of o (totals over several connections or decoders).
  void add(const IngestStats& o);
  /// Sums of format_packet_drops / format_event_drops (not included in the two above).
  uint64_t format_packets_dropped() const {
    uint64_t n = 0;
    for (auto v : format_packet_drops) n += v;
    return n;
  }
  uint64_t format_events_dropped() const {
    uint64_t n = 0;
    for (auto v : format_event_drops) n += v;
    return n;
  }
};

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
  };
  /// Returns false when the packet is a duplicate.
  bool track_sequence(uint32_t stream_id, uint64_t sequence);

  IngestStats stats_;
  std::unordered_map<uint32_t, StreamState> streams_;
};

}  // namespace spikeflow::stages
