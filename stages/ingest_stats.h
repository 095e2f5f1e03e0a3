// IngestStats: the counters every ingest decoder keeps (native UDP, native framed over TCP,
// Blackrock NSP, Intan RHX spike stream), and the drop reasons that index them. Every dropped
// packet or event is counted under exactly one reason.
// Producers: the decoders in stages/ (each owns one IngestStats, written by its ingest thread
// only). Consumers: the pipeline, which copies them out and sums them (add()) for reporting.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace spikeflow::stages {

/// Why a datagram (or an event inside it) was dropped. Every value has a counter.
enum class PacketDrop : uint8_t {
  kTruncatedHeader = 0,  ///< shorter than the header
  kBadMagic,
  kBadVersion,
  kBadHeaderSize,
  kLengthMismatch,  ///< byte length disagrees with event_count (truncated or trailing bytes)
  kOversized,       ///< event_count above kMaxEventsPerDatagram
  kBadPacketTime,   ///< device_time_ns negative
  kCount
};

/// Why a single event was dropped while its packet was accepted.
enum class EventDrop : uint8_t {
  kNegativeTime = 0,  ///< t_ns < 0
  kAfterPacketTime,   ///< t_ns > the packet's device_time_ns (clock going backwards)
  kCount
};

/// Why a packet or record of one of the other ingest formats (Blackrock NSP, Intan RHX spike
/// stream, native format framed over TCP) was dropped. Counted in IngestStats::format_packet_drops;
/// the shared reasons (bad magic, negative time, ...) use PacketDrop / EventDrop.
enum class FormatPacketDrop : uint8_t {
  kTruncatedPacket = 0,  ///< Blackrock: a packet header, or the dlen it declares, runs past the
                         ///< datagram's end; the rest of that datagram is discarded
  kBadSpikePacket,       ///< Blackrock: spike-channel packet shorter than the fixed spike fields
  kBadChannelName,       ///< Intan: channel name is not "P-NNN" (P in A..H, NNN < 128)
  kLostSync,             ///< Intan: no record magic where one was due; bytes skipped until the
                         ///< next magic (one count per episode; bytes in IngestStats::resync_bytes)
  kFramingError,         ///< native over TCP: frame length 0 or > kMaxUdpPayload; stream broken
  kCount
};

/// Why one spike of an otherwise good packet/record of those formats was dropped. Counted in
/// IngestStats::format_event_drops.
enum class FormatEventDrop : uint8_t {
  kNoise = 0,    ///< Blackrock unit 255 (noise), Intan spike id with the "likely artifact" bit
  kUnknownUnit,  ///< Blackrock unit 6..254, Intan spike id of no documented meaning
  kChannelOutOfRange,  ///< Blackrock: a spike-shaped packet on a chid that is no front-end
                       ///< channel (chid 0 outside the sample groups, or above fe_channels)
  kCount
};

/// snake_case names of the reasons, as metrics and logs print them ("bad_magic"); "unknown" for
/// a value out of range.
std::string_view to_string(PacketDrop reason);
std::string_view to_string(EventDrop reason);
std::string_view to_string(FormatPacketDrop reason);
std::string_view to_string(FormatEventDrop reason);

struct IngestStats {
  uint64_t packets_accepted = 0;
  uint64_t events_accepted = 0;
  uint64_t heartbeats = 0;  ///< heartbeats seen: native datagrams with no events, Blackrock
                            ///< system heartbeat packets (cbPKT_SYSHEARTBEAT, every 10 ms)
  std::array<uint64_t, static_cast<size_t>(PacketDrop::kCount)> packet_drops{};
  std::array<uint64_t, static_cast<size_t>(EventDrop::kCount)> event_drops{};
  uint64_t packets_lost = 0;       ///< sequence gaps (packets never seen)
  uint64_t packets_duplicate = 0;  ///< seen before: dropped
  uint64_t packets_reordered = 0;  ///< arrived after a later one: accepted
  uint64_t stream_restarts = 0;    ///< sequence jumped back by >= 64: numbering restarted

  // Counters of the other ingest formats (stages/blackrock_packet_decoder.h,
  // stages/intan_spike_stream.h, stages/native_stream_framer.h); zero for native UDP.
  std::array<uint64_t, static_cast<size_t>(FormatPacketDrop::kCount)> format_packet_drops{};
  std::array<uint64_t, static_cast<size_t>(FormatEventDrop::kCount)> format_event_drops{};
  uint64_t packets_skipped = 0;  ///< well-formed Blackrock packets that carry no spike (continuous
                                 ///< sample groups, digital/analog input, ...; their time still
                                 ///< advances the clock): not errors
  uint64_t clock_wraps = 0;      ///< 32-bit device clock wrapped (Blackrock 3.x, Intan); time
                                 ///< keeps increasing across it
  uint64_t resync_bytes = 0;     ///< Intan: bytes skipped while looking for the next record magic

  uint64_t connections = 0;  ///< TCP connections made (accepted, or connected in client mode)
  uint64_t disconnects = 0;  ///< TCP connections closed by the peer or dropped after an error
  /// Access control (`ingest.allow`, pipeline/cidr_set.h), counted by the pipeline's ingest:
  uint64_t refused_source = 0;  ///< UDP datagrams from a source not allowed: dropped undecoded
  uint64_t refused_connections =
      0;                          ///< TCP connections from a source not allowed: closed at accept
  uint64_t connect_failures = 0;  ///< client mode (ingest.connect): attempts that failed; retried
                                  ///< with backoff

  /// Every dropped packet / event, all formats and reasons (refused_source included).
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

}  // namespace spikeflow::stages
