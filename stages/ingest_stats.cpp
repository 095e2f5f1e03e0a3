#include "stages/ingest_stats.h"

namespace spikeflow::stages {

std::string_view to_string(PacketDrop reason) {
  switch (reason) {
    case PacketDrop::kTruncatedHeader:
      return "truncated_header";
    case PacketDrop::kBadMagic:
      return "bad_magic";
    case PacketDrop::kBadVersion:
      return "bad_version";
    case PacketDrop::kBadHeaderSize:
      return "bad_header_size";
    case PacketDrop::kLengthMismatch:
      return "length_mismatch";
    case PacketDrop::kOversized:
      return "oversized";
    case PacketDrop::kBadPacketTime:
      return "bad_packet_time";
    case PacketDrop::kCount:
      break;
  }
  return "unknown";
}

std::string_view to_string(EventDrop reason) {
  switch (reason) {
    case EventDrop::kNegativeTime:
      return "negative_time";
    case EventDrop::kAfterPacketTime:
      return "after_packet_time";
    case EventDrop::kCount:
      break;
  }
  return "unknown";
}

std::string_view to_string(FormatPacketDrop reason) {
  switch (reason) {
    case FormatPacketDrop::kTruncatedPacket:
      return "truncated_packet";
    case FormatPacketDrop::kBadSpikePacket:
      return "bad_spike_packet";
    case FormatPacketDrop::kBadChannelName:
      return "bad_channel_name";
    case FormatPacketDrop::kLostSync:
      return "lost_sync";
    case FormatPacketDrop::kFramingError:
      return "framing_error";
    case FormatPacketDrop::kCount:
      break;
  }
  return "unknown";
}

std::string_view to_string(FormatEventDrop reason) {
  switch (reason) {
    case FormatEventDrop::kNoise:
      return "noise";
    case FormatEventDrop::kUnknownUnit:
      return "unknown_unit";
    case FormatEventDrop::kChannelOutOfRange:
      return "channel_out_of_range";
    case FormatEventDrop::kCount:
      break;
  }
  return "unknown";
}

uint64_t IngestStats::packets_dropped() const {
  uint64_t n = packets_duplicate + refused_source + format_packets_dropped();
  for (auto v : packet_drops) n += v;
  return n;
}

uint64_t IngestStats::events_dropped() const {
  uint64_t n = format_events_dropped();
  for (auto v : event_drops) n += v;
  return n;
}

void IngestStats::add(const IngestStats& o) {
  packets_accepted += o.packets_accepted;
  events_accepted += o.events_accepted;
  heartbeats += o.heartbeats;
  for (size_t i = 0; i < packet_drops.size(); ++i) packet_drops[i] += o.packet_drops[i];
  for (size_t i = 0; i < event_drops.size(); ++i) event_drops[i] += o.event_drops[i];
  packets_lost += o.packets_lost;
  packets_duplicate += o.packets_duplicate;
  packets_reordered += o.packets_reordered;
  stream_restarts += o.stream_restarts;
  for (size_t i = 0; i < format_packet_drops.size(); ++i)
    format_packet_drops[i] += o.format_packet_drops[i];
  for (size_t i = 0; i < format_event_drops.size(); ++i)
    format_event_drops[i] += o.format_event_drops[i];
  packets_skipped += o.packets_skipped;
  clock_wraps += o.clock_wraps;
  resync_bytes += o.resync_bytes;
  connections += o.connections;
  disconnects += o.disconnects;
  refused_source += o.refused_source;
  refused_connections += o.refused_connections;
  connect_failures += o.connect_failures;
}

}  // namespace spikeflow::stages
