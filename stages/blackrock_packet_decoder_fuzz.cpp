// libFuzzer target: datagrams into BlackrockPacketDecoder (stages/blackrock_packet_decoder.h).
// Input: byte 0 picks the options (protocol, time_units, fe_channel_count, sample rate); the
// rest is a series of datagrams, each a u16 little-endian length then that many bytes (the last
// one takes whatever is left), decoded by one decoder so the 3.11 clock unwrapping carries over.
// Invariants: at most one spike per smallest spike packet of the datagram; every spike has a
// front-end channel key (instrument * 65536 + chid, chid 1..fe_channel_count; instrument 0 on
// 3.11), a kept unit (0..5) and 0 <= t_ns <= the batch's device_time_ns; a datagram
// without a usable time leaves an empty batch with device_time_ns = -1.
#include <cstddef>
#include <cstdint>
#include <span>

#include "stages/blackrock_packet_decoder.h"
#include "tests/fuzz/fuzz_support.h"

using namespace spikeflow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t o = data[0];
  stages::BlackrockOptions opt;
  static constexpr stages::BlackrockProtocol kProtocols[4] = {
      stages::BlackrockProtocol::kV3_11, stages::BlackrockProtocol::kV4_0,
      stages::BlackrockProtocol::kV4_1, stages::BlackrockProtocol::kV4_1};
  static constexpr int64_t kRates[4] = {30'000, 1, 1'000'000'000, 48'000};
  opt.protocol = kProtocols[o & 3];
  // 4.x: bit 2 ticks, else bit 6 auto (PROCREP / SYSREP), else ns; 3.11: ticks (auto is the same).
  if (opt.protocol != stages::BlackrockProtocol::kV3_11) {
    opt.time_units = (o & 4)    ? stages::BlackrockTimeUnits::kTicks
                     : (o & 64) ? stages::BlackrockTimeUnits::kAuto
                                : stages::BlackrockTimeUnits::kNs;
  }
  opt.fe_channel_count = (o & 8) ? 0x7FFF : stages::kBlackrockDefaultFeChannels;
  opt.sample_rate_hz = kRates[(o >> 4) & 3];
  stages::BlackrockPacketDecoder decoder(opt);
  const size_t min_spike_bytes =
      stages::blackrock_header_bytes(opt.protocol) + stages::kBlackrockSpikeFixedBytes;

  core::EventBatch batch;
  size_t at = 1;
  uint64_t spikes = 0;
  while (at < size) {
    size_t n = size - at;
    if (n >= 2) {
      n = std::min<size_t>(fuzz::read_le<uint16_t>(data + at), n - 2);
      at += 2;
    }
    const std::span<const uint8_t> datagram(data + at, n);
    at += n;
    const bool ok = decoder.decode(datagram, 3, batch);
    FUZZ_CHECK(batch.arrival_host_ns == 3);
    FUZZ_CHECK(batch.events.size() <= n / min_spike_bytes);
    if (!ok) {
      FUZZ_CHECK(batch.events.empty() && batch.device_time_ns == -1);
      continue;
    }
    FUZZ_CHECK(batch.device_time_ns >= 0);
    for (const auto& e : batch.events) {
      const uint32_t chid = e.channel % stages::kBlackrockInstrumentStride;
      FUZZ_CHECK(chid >= 1 && chid <= opt.fe_channel_count);
      FUZZ_CHECK(e.channel / stages::kBlackrockInstrumentStride <=
                 (opt.protocol == stages::BlackrockProtocol::kV3_11 ? 0u : 255u));
      FUZZ_CHECK(e.unit <= stages::kBlackrockMaxUnit);
      FUZZ_CHECK(e.t_ns >= 0 && e.t_ns <= batch.device_time_ns);
    }
    spikes += batch.events.size();
  }
  FUZZ_CHECK(decoder.stats().events_accepted == spikes);
  return 0;
}
