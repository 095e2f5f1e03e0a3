// spikeflow's native UDP/TCP packet format, version 1 (documented byte by byte in README.md,
// "Native packet format"). All fields little-endian.
//
//   offset size type  field
//   0      4    u32   magic = 0x4B465053 (bytes 'S' 'P' 'F' 'K')
//   4      2    u16   version = 1
//   6      2    u16   header_bytes = 32
//   8      4    u32   stream_id      (sender identity; sequence numbers are per stream)
//   12     4    u32   event_count    (0 = heartbeat)
//   16     8    u64   sequence       (per stream, +1 per packet)
//   24     8    i64   device_time_ns (sender's device clock when sent; every event in this and
//                                     earlier packets has t_ns <= device_time_ns)
//   32     16*n       events: i64 t_ns, u32 channel, u16 unit, u16 reserved (= 0)
//
// Producer: acquisition bridges and `spikeflow send`. Consumer: stages::NativePacketDecoder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "core/spike_event.h"

namespace spikeflow::stages {

constexpr uint32_t kNativeMagic = 0x4B465053u;
constexpr uint16_t kNativeVersion = 1;
constexpr size_t kNativeHeaderBytes = 32;
constexpr size_t kNativeEventBytes = 16;
constexpr size_t kMaxUdpPayload = 65507;
constexpr size_t kMaxEventsPerDatagram = (kMaxUdpPayload - kNativeHeaderBytes) / kNativeEventBytes;

struct NativePacketHeader {
  uint32_t stream_id = 0;
  uint32_t event_count = 0;
  uint64_t sequence = 0;
  int64_t device_time_ns = 0;
};

/// Why a datagram (or an event inside it) was dropped. Every value has a counter.
enum class PacketDrop : uint8_t {
  kTruncatedHeader = 0,  ///< shorter than the header
  kBadMagic,
  kBadVersion,
  kBadHeaderSize,
  kLengthMismatch,       ///< byte length disagrees with event_count (truncated or trailing bytes)
  kOversized,            ///< event_count above kMaxEventsPerDatagram
  kBadPacketTime,        ///< device_time_ns negative
  kCount
};

/// Why a single event was dropped while its packet was accepted.
enum class EventDrop : uint8_t {
  kNegativeTime = 0,     ///< t_ns < 0
  kAfterPacketTime,      ///< t_ns > the packet's device_time_ns (clock going backwards)
  kCount
};

std::string_view to_string(PacketDrop reason);
std::string_view to_string(EventDrop reason);

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
  kCount
};

inline std::string_view to_string(FormatPacketDrop reason) {
  switch (reason) {
    case FormatPacketDrop::kTruncatedPacket: return "truncated_packet";
    case FormatPacketDrop::kBadSpikePacket: return "bad_spike_packet";
    case FormatPacketDrop::kBadChannelName: return "bad_channel_name";
    case FormatPacketDrop::kLostSync: return "lost_sync";
    case FormatPacketDrop::kFramingError: return "framing_error";
    case FormatPacketDrop::kCount: break;
  }
  return "unknown";
}

inline std::string_view to_string(FormatEventDrop reason) {
  switch (reason) {
    case FormatEventDrop::kNoise: return "noise";
    case FormatEventDrop::kUnknownUnit: return "unknown_unit";
    case FormatEventDrop::kCount: break;
  }
  return "unknown";
}

/// Appends the encoded packet to out. Used by senders and tests.
void encode_native_packet(const NativePacketHeader& header, std::span<const core::SpikeEvent> events,
                          std::vector<uint8_t>& out);

}  // namespace spikeflow::stages
