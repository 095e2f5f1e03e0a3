// libFuzzer target: a TCP byte stream into NativeStreamFramer (stages/native_stream_framer.h).
// Input: byte 0 seeds how the stream is cut into reads; the rest is the stream.
// Invariants: the result does not depend on where the reads are cut (same batches, same
// counters, same broken state as one read of the whole stream); each batch holds at most the
// events a maximal native packet can carry; batches passed <= frames the stream can hold.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "stages/native_stream_framer.h"
#include "tests/fuzz/fuzz_support.h"

using namespace spikeflow;

namespace {

struct Seen {
  std::vector<core::SpikeEvent> events;
  std::vector<int64_t> device_times;
  size_t batches = 0;
};

bool same(const Seen& a, const Seen& b) {
  if (a.batches != b.batches || a.device_times != b.device_times ||
      a.events.size() != b.events.size()) {
    return false;
  }
  for (size_t i = 0; i < a.events.size(); ++i) {
    if (a.events[i].t_ns != b.events[i].t_ns || a.events[i].channel != b.events[i].channel ||
        a.events[i].unit != b.events[i].unit) {
      return false;
    }
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  uint32_t rng = data[0] * 2654435761u + 1;
  const std::span<const uint8_t> stream(data + 1, size - 1);

  auto run = [&](bool split, Seen& seen) {
    stages::NativeStreamFramer framer;
    const stages::NativeStreamFramer::Sink sink = [&](core::EventBatch& b) {
      FUZZ_CHECK(b.events.size() <= stages::kMaxEventsPerDatagram);
      seen.events.insert(seen.events.end(), b.events.begin(), b.events.end());
      seen.device_times.push_back(b.device_time_ns);
      ++seen.batches;
    };
    size_t passed = 0;
    size_t at = 0;
    while (at < stream.size()) {
      size_t n = stream.size() - at;
      if (split) {
        rng = rng * 1103515245u + 12345u;
        n = std::min<size_t>(n, 1 + (rng >> 16) % 97);
      }
      passed += framer.feed(stream.subspan(at, n), 1, sink);
      at += n;
    }
    FUZZ_CHECK(passed == seen.batches);
    return framer.stats();
  };

  Seen whole, pieces;
  const stages::IngestStats a = run(false, whole);
  const stages::IngestStats b = run(true, pieces);
  FUZZ_CHECK(same(whole, pieces));
  FUZZ_CHECK(a.packets_accepted == b.packets_accepted && a.events_accepted == b.events_accepted);
  FUZZ_CHECK(a.packets_dropped() == b.packets_dropped() &&
             a.events_dropped() == b.events_dropped());
  FUZZ_CHECK(a.format_packet_drops == b.format_packet_drops);
  FUZZ_CHECK(a.format_packet_drops[static_cast<size_t>(stages::FormatPacketDrop::kFramingError)] <=
             1);
  // A frame is at least a 4-byte prefix and a 32-byte native header.
  FUZZ_CHECK(whole.batches <=
             stream.size() / (stages::kNativeFrameLengthBytes + stages::kNativeHeaderBytes));
  FUZZ_CHECK(whole.events.size() * stages::kNativeEventBytes <= stream.size());
  return 0;
}
