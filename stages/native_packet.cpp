#include "stages/native_packet.h"

#include "core/byte_io.h"

namespace spikeflow::stages {

void encode_native_packet(const NativePacketHeader& header,
                          std::span<const core::SpikeEvent> events, std::vector<uint8_t>& out) {
  core::ByteWriter w(out);
  w.reserve_more(kNativeHeaderBytes + events.size() * kNativeEventBytes);
  w.write<uint32_t>(kNativeMagic);
  w.write<uint16_t>(kNativeVersion);
  w.write<uint16_t>(static_cast<uint16_t>(kNativeHeaderBytes));
  w.write<uint32_t>(header.stream_id);
  w.write<uint32_t>(static_cast<uint32_t>(events.size()));
  w.write<uint64_t>(header.sequence);
  w.write<int64_t>(header.device_time_ns);
  for (const auto& e : events) {
    w.write<int64_t>(e.t_ns);
    w.write<uint32_t>(e.channel);
    w.write<uint16_t>(e.unit);
    w.write<uint16_t>(0);
  }
}

}  // namespace spikeflow::stages
