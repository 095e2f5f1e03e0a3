#include "stages/blackrock_packet.h"

#include <array>

#include "stages/little_endian.h"

namespace spikeflow::stages {

void encode_blackrock_packet(BlackrockProtocol protocol, const BlackrockPacketHeader& header,
                             std::span<const uint8_t> payload, std::vector<uint8_t>& out) {
  const size_t words = (payload.size() + 3) / 4;
  out.reserve(out.size() + blackrock_header_bytes(protocol) + 4 * words);
  switch (protocol) {
    case BlackrockProtocol::kV3_11:
      append_le<uint32_t>(out, static_cast<uint32_t>(header.time));
      append_le<uint16_t>(out, header.chid);
      append_le<uint8_t>(out, static_cast<uint8_t>(header.type));
      append_le<uint8_t>(out, static_cast<uint8_t>(words));
      break;
    case BlackrockProtocol::kV4_0:
      append_le<uint64_t>(out, header.time);
      append_le<uint16_t>(out, header.chid);
      append_le<uint8_t>(out, static_cast<uint8_t>(header.type));
      append_le<uint16_t>(out, static_cast<uint16_t>(words));
      append_le<uint8_t>(out, header.instrument);
      append_le<uint16_t>(out, 0);
      break;
    case BlackrockProtocol::kV4_1:
      append_le<uint64_t>(out, header.time);
      append_le<uint16_t>(out, header.chid);
      append_le<uint16_t>(out, header.type);
      append_le<uint16_t>(out, static_cast<uint16_t>(words));
      append_le<uint8_t>(out, header.instrument);
      append_le<uint8_t>(out, 0);
      break;
  }
  out.insert(out.end(), payload.begin(), payload.end());
  out.resize(out.size() + (4 * words - payload.size()), 0);
}

void encode_blackrock_spike(BlackrockProtocol protocol, uint64_t time, uint16_t chid, uint8_t unit,
                            size_t wave_samples, std::vector<uint8_t>& out) {
  std::array<uint8_t, kBlackrockSpikeFixedBytes + 2 * kBlackrockMaxWaveSamples> payload{};
  if (wave_samples > kBlackrockMaxWaveSamples) wave_samples = kBlackrockMaxWaveSamples;
  BlackrockPacketHeader h;
  h.time = time;
  h.chid = chid;
  h.type = unit;
  encode_blackrock_packet(protocol, h,
                          std::span<const uint8_t>(payload.data(),
                                                   kBlackrockSpikeFixedBytes + 2 * wave_samples),
                          out);
}

void encode_blackrock_heartbeat(BlackrockProtocol protocol, uint64_t time, std::vector<uint8_t>& out) {
  BlackrockPacketHeader h;
  h.time = time;
  h.chid = kBlackrockConfigChannel;
  h.type = kBlackrockTypeHeartbeat;
  encode_blackrock_packet(protocol, h, {}, out);
}

}  // namespace spikeflow::stages
