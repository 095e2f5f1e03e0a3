// libFuzzer target: one datagram into NativePacketDecoder (stages/native_packet_decoder.h).
// Invariants: an accepted packet holds at most (size - header) / 16 events, each with
// 0 <= t_ns <= device_time_ns; re-encoding what was accepted decodes to the same batch (and to
// the input bytes themselves when nothing was dropped); the same datagram again is a duplicate.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "stages/native_packet.h"
#include "stages/native_packet_decoder.h"
#include "tests/fuzz/fuzz_support.h"

using namespace spikeflow;
using spikeflow::fuzz::read_le;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> in(data, size);
  stages::NativePacketDecoder decoder;
  core::EventBatch batch;
  if (!decoder.decode(in, 7, batch)) {
    FUZZ_CHECK(decoder.stats().packets_accepted == 0);
    FUZZ_CHECK(decoder.stats().packets_dropped() == 1);
    return 0;
  }
  FUZZ_CHECK(size >= stages::kNativeHeaderBytes);
  FUZZ_CHECK(batch.events.size() <=
             (size - stages::kNativeHeaderBytes) / stages::kNativeEventBytes);
  FUZZ_CHECK(batch.arrival_host_ns == 7);
  FUZZ_CHECK(batch.device_time_ns >= 0);
  for (const auto& e : batch.events) FUZZ_CHECK(e.t_ns >= 0 && e.t_ns <= batch.device_time_ns);
  const auto& st = decoder.stats();
  FUZZ_CHECK(st.packets_accepted == 1 && st.events_accepted == batch.events.size());
  const uint32_t declared = read_le<uint32_t>(data + 12);
  FUZZ_CHECK(batch.events.size() + st.events_dropped() == declared);

  // Round trip: encode what was accepted, decode it with a fresh decoder.
  stages::NativePacketHeader h;
  h.stream_id = read_le<uint32_t>(data + 8);
  h.event_count = static_cast<uint32_t>(batch.events.size());
  h.sequence = read_le<uint64_t>(data + 16);
  h.device_time_ns = batch.device_time_ns;
  std::vector<uint8_t> again;
  stages::encode_native_packet(h, batch.events, again);
  if (batch.events.size() == declared) {
    // Nothing dropped: the encoder reproduces the input except the reserved u16 of each event
    // (the decoder ignores it, the encoder writes 0).
    FUZZ_CHECK(again.size() == size);
    for (size_t i = 0; i < size; ++i) {
      const bool reserved =
          i >= stages::kNativeHeaderBytes && (i - stages::kNativeHeaderBytes) % 16 >= 14;
      if (!reserved) FUZZ_CHECK(again[i] == data[i]);
    }
  }
  stages::NativePacketDecoder fresh;
  core::EventBatch batch2;
  FUZZ_CHECK(fresh.decode(again, 7, batch2));
  FUZZ_CHECK(batch2.device_time_ns == batch.device_time_ns);
  FUZZ_CHECK(batch2.events.size() == batch.events.size());
  for (size_t i = 0; i < batch.events.size(); ++i) {
    FUZZ_CHECK(batch2.events[i].t_ns == batch.events[i].t_ns);
    FUZZ_CHECK(batch2.events[i].channel == batch.events[i].channel);
    FUZZ_CHECK(batch2.events[i].unit == batch.events[i].unit);
  }

  // The same datagram a second time is a duplicate.
  FUZZ_CHECK(!decoder.decode(in, 8, batch));
  FUZZ_CHECK(decoder.stats().packets_duplicate == 1);
  return 0;
}
