// libFuzzer target: a TCP byte stream into IntanSpikeStreamDecoder (stages/intan_spike_stream.h).
// Input: byte 0 picks the options (raw_spike_id, sample rate) and seeds how the stream is cut
// into reads; the rest is the stream.
// Invariants: the events and counters do not depend on where the reads are cut; each read yields
// at most bytes / 14 + 1 events (the documented capacity); channels < 1024, units 0..4 unless
// raw_spike_id; every well-formed record is either kept or counted; resync_bytes <= stream size.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "stages/intan_spike_stream.h"
#include "tests/fuzz/fuzz_support.h"

using namespace spikeflow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t o = data[0];
  stages::IntanOptions opt;
  static constexpr double kRates[4] = {30'000, 1, 1'000'000'000, 20'000};
  opt.raw_spike_id = (o & 1) != 0;
  opt.sample_rate_hz = kRates[(o >> 1) & 3];
  uint32_t rng = o * 2654435761u + 1;
  const std::span<const uint8_t> stream(data + 1, size - 1);

  auto run = [&](bool split, std::vector<core::SpikeEvent>& events) {
    stages::IntanSpikeStreamDecoder decoder(opt);
    core::EventBatch batch;
    size_t at = 0;
    while (at < stream.size()) {
      size_t n = stream.size() - at;
      if (split) {
        rng = rng * 1103515245u + 12345u;
        n = std::min<size_t>(n, 1 + (rng >> 16) % 41);
      }
      decoder.feed(stream.subspan(at, n), 5, batch);
      at += n;
      FUZZ_CHECK(batch.arrival_host_ns == 5);
      FUZZ_CHECK(batch.events.size() <= n / stages::kIntanSpikeRecordBytes + 1);
      for (const auto& e : batch.events) {
        FUZZ_CHECK(e.channel < stages::kIntanPorts * stages::kIntanChannelsPerPort);
        FUZZ_CHECK(opt.raw_spike_id || e.unit <= 4);
        FUZZ_CHECK(e.t_ns >= 0 && e.t_ns <= batch.device_time_ns);
      }
      events.insert(events.end(), batch.events.begin(), batch.events.end());
    }
    return decoder.stats();
  };

  std::vector<core::SpikeEvent> whole, pieces;
  const stages::IngestStats a = run(false, whole);
  const stages::IngestStats b = run(true, pieces);
  FUZZ_CHECK(whole.size() == pieces.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    FUZZ_CHECK(whole[i].t_ns == pieces[i].t_ns && whole[i].channel == pieces[i].channel &&
               whole[i].unit == pieces[i].unit);
  }
  FUZZ_CHECK(a.packets_accepted == b.packets_accepted && a.events_accepted == b.events_accepted);
  FUZZ_CHECK(a.format_packet_drops == b.format_packet_drops &&
             a.format_event_drops == b.format_event_drops);
  FUZZ_CHECK(a.resync_bytes == b.resync_bytes && a.clock_wraps == b.clock_wraps);
  FUZZ_CHECK(a.resync_bytes <= stream.size());
  FUZZ_CHECK(whole.size() == a.events_accepted);
  FUZZ_CHECK(a.packets_accepted * stages::kIntanSpikeRecordBytes <= stream.size());
  FUZZ_CHECK(a.packets_accepted == a.events_accepted + a.events_dropped());
  return 0;
}
