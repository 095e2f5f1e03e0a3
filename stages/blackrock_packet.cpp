#include "stages/blackrock_packet.h"

#include <array>

#include "core/byte_io.h"

namespace spikeflow::stages {

void encode_blackrock_packet(BlackrockProtocol protocol, const BlackrockPacketHeader& header,
                             std::span<const uint8_t> payload, std::vector<uint8_t>& out) {
  const size_t words = (payload.size() + 3) / 4;
  core::ByteWriter w(out);
  w.reserve_more(blackrock_header_bytes(protocol) + 4 * words);
  switch (protocol) {
    case BlackrockProtocol::kV3_11:
      w.write<uint32_t>(static_cast<uint32_t>(header.time));
      w.write<uint16_t>(header.chid);
      w.write<uint8_t>(static_cast<uint8_t>(header.type));
      w.write<uint8_t>(static_cast<uint8_t>(words));
      break;
    case BlackrockProtocol::kV4_0:
      w.write<uint64_t>(header.time);
      w.write<uint16_t>(header.chid);
      w.write<uint8_t>(static_cast<uint8_t>(header.type));
      w.write<uint16_t>(static_cast<uint16_t>(words));
      w.write<uint8_t>(header.instrument);
      w.write<uint16_t>(0);
      break;
    case BlackrockProtocol::kV4_1:
      w.write<uint64_t>(header.time);
      w.write<uint16_t>(header.chid);
      w.write<uint16_t>(header.type);
      w.write<uint16_t>(static_cast<uint16_t>(words));
      w.write<uint8_t>(header.instrument);
      w.write<uint8_t>(0);
      break;
  }
  w.write_bytes(payload);
  out.resize(out.size() + (4 * words - payload.size()), 0);
}

void encode_blackrock_spike(BlackrockProtocol protocol, uint64_t time, uint16_t chid, uint8_t unit,
                            size_t wave_samples, std::vector<uint8_t>& out, uint8_t instrument) {
  std::array<uint8_t, kBlackrockSpikeFixedBytes + 2 * kBlackrockMaxWaveSamples> payload{};
  if (wave_samples > kBlackrockMaxWaveSamples) wave_samples = kBlackrockMaxWaveSamples;
  BlackrockPacketHeader h;
  h.time = time;
  h.chid = chid;
  h.type = unit;
  h.instrument = instrument;
  encode_blackrock_packet(
      protocol, h,
      std::span<const uint8_t>(payload.data(), kBlackrockSpikeFixedBytes + 2 * wave_samples), out);
}

void encode_blackrock_heartbeat(BlackrockProtocol protocol, uint64_t time,
                                std::vector<uint8_t>& out, uint8_t instrument) {
  BlackrockPacketHeader h;
  h.time = time;
  h.chid = kBlackrockConfigChannel;
  h.type = kBlackrockTypeHeartbeat;
  h.instrument = instrument;
  encode_blackrock_packet(protocol, h, {}, out);
}

}  // namespace spikeflow::stages
