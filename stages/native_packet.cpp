#include "stages/native_packet.h"

#include <cstring>

namespace spikeflow::stages {

namespace {

template <typename T>
void put_le(std::vector<uint8_t>& out, T value) {
  static_assert(std::is_integral_v<T>);
  using U = std::make_unsigned_t<T>;
  auto u = static_cast<U>(value);
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<uint8_t>(u >> (8 * i)));
}

}  // namespace

std::string_view to_string(PacketDrop reason) {
  switch (reason) {
    case PacketDrop::kTruncatedHeader: return "truncated_header";
    case PacketDrop::kBadMagic: return "bad_magic";
    case PacketDrop::kBadVersion: return "bad_version";
    case PacketDrop::kBadHeaderSize: return "bad_header_size";
    case PacketDrop::kLengthMismatch: return "length_mismatch";
    case PacketDrop::kOversized: return "oversized";
    case PacketDrop::kBadPacketTime: return "bad_packet_time";
    case PacketDrop::kCount: break;
  }
  return "unknown";
}

std::string_view to_string(EventDrop reason) {
  switch (reason) {
    case EventDrop::kNegativeTime: return "negative_time";
    case EventDrop::kAfterPacketTime: return "after_packet_time";
    case EventDrop::kCount: break;
  }
  return "unknown";
}

void encode_native_packet(const NativePacketHeader& header, std::span<const core::SpikeEvent> events,
                          std::vector<uint8_t>& out) {
  out.reserve(out.size() + kNativeHeaderBytes + events.size() * kNativeEventBytes);
  put_le<uint32_t>(out, kNativeMagic);
  put_le<uint16_t>(out, kNativeVersion);
  put_le<uint16_t>(out, static_cast<uint16_t>(kNativeHeaderBytes));
  put_le<uint32_t>(out, header.stream_id);
  put_le<uint32_t>(out, static_cast<uint32_t>(events.size()));
  put_le<uint64_t>(out, header.sequence);
  put_le<int64_t>(out, header.device_time_ns);
  for (const auto& e : events) {
    put_le<int64_t>(out, e.t_ns);
    put_le<uint32_t>(out, e.channel);
    put_le<uint16_t>(out, e.unit);
    put_le<uint16_t>(out, 0);
  }
}

}  // namespace spikeflow::stages
