// libFuzzer target: a recording file (.sfrec) into read_recording (replay/recording_file.h).
// Each input is read twice: as is, then with the header's and every record's CRC-32 repaired
// (layout in replay/RECORDING_FORMAT.md) so that mutations reach the record decoders.
// Invariants: only std::runtime_error escapes (and only for a bad header); bytes_read +
// bytes_lost is the file size; the events, units and predictions read fit in the bytes read;
// a clean end is neither truncated nor corrupt; every prediction has output_dim in [0, 8].
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "replay/recording_file.h"
#include "tests/fuzz/fuzz_support.h"

using namespace spikeflow;

namespace {

void check(const uint8_t* data, size_t size) {
  static fuzz::FuzzFile file(".sfrec");
  replay::Recording r;
  try {
    r = replay::read_recording(file.write(data, size));
  } catch (const std::runtime_error&) {
    return;
  }
  FUZZ_CHECK(r.bytes_read <= size && r.bytes_read + r.bytes_lost == size);
  FUZZ_CHECK(!(r.clean_end && (r.truncated || r.corrupt)));
  FUZZ_CHECK(r.clean_end || r.truncated || r.corrupt || r.bytes_lost == 0);
  size_t events = 0;
  for (const auto& b : r.batches) events += b.events.size();
  FUZZ_CHECK(events * 16 + r.batches.size() * 36 <= r.bytes_read);
  FUZZ_CHECK(r.predictions.size() * 100 <= r.bytes_read);
  FUZZ_CHECK(r.units.size() * 8 <= r.bytes_read);
  FUZZ_CHECK(r.config.size() + r.model.size() + r.model_identity.size() <= r.bytes_read);
  FUZZ_CHECK(r.records * 12 <= r.bytes_read);
  for (const auto& p : r.predictions)
    FUZZ_CHECK(p.output_dim >= 0 && p.output_dim <= core::kMaxOutputDim);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check(data, size);
  std::vector<uint8_t> fixed(data, data + size);
  if (fixed.size() >= 40) {
    fuzz::write_le<uint32_t>(&fixed[36], fuzz::crc32(fixed.data(), 36));
    // Records: u32 type; u32 L; payload[L]; u32 crc32(type, L, payload).
    size_t at = 40;
    while (at + 12 <= fixed.size()) {
      const uint32_t len = fuzz::read_le<uint32_t>(&fixed[at + 4]);
      if (len > fixed.size() - at - 12) break;
      fuzz::write_le<uint32_t>(&fixed[at + 8 + len], fuzz::crc32(&fixed[at], 8 + size_t{len}));
      at += 12 + size_t{len};
    }
  }
  if (!std::equal(fixed.begin(), fixed.end(), data)) check(fixed.data(), fixed.size());
  return 0;
}
