// libFuzzer target: a session file (.sfs) into read_session_file (replay/session_file.h).
// Each input is read twice: as is, then with every section's CRC-32 repaired (layout in
// replay/SESSION_FORMAT.md) so that mutations reach the section decoders behind the CRC check.
// Invariants: bad input is a std::runtime_error, nothing else; an accepted session passes
// Session::validate, holds no more spikes / samples / trials than the file has bytes for, and
// writes and reads back to the same session.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "replay/session_file.h"
#include "tests/fuzz/fuzz_support.h"

using namespace spikeflow;

namespace {

bool same(const replay::Session& a, const replay::Session& b) {
  if (a.behavior.size() != b.behavior.size()) return false;
  for (size_t i = 0; i < a.behavior.size(); ++i) {
    // Bitwise: NaN never equals itself.
    if (std::memcmp(&a.behavior[i], &b.behavior[i], sizeof(float)) != 0) return false;
  }
  if (a.trials.size() != b.trials.size()) return false;
  for (size_t i = 0; i < a.trials.size(); ++i) {
    if (a.trials[i].start_ns != b.trials[i].start_ns || a.trials[i].end_ns != b.trials[i].end_ns ||
        a.trials[i].condition != b.trials[i].condition) {
      return false;
    }
  }
  return a.units == b.units && a.spike_times_ns == b.spike_times_ns &&
         a.behavior_names == b.behavior_names && a.behavior_t_ns == b.behavior_t_ns &&
         a.start_ns == b.start_ns && a.end_ns == b.end_ns;
}

void check(const uint8_t* data, size_t size) {
  static fuzz::FuzzFile file(".sfs");
  static fuzz::FuzzFile copy("_copy.sfs");
  replay::Session s;
  try {
    s = replay::read_session_file(file.write(data, size));
  } catch (const std::runtime_error&) {
    return;
  }
  try {
    s.validate("fuzz");
  } catch (const std::runtime_error& e) {
    std::fprintf(stderr, "accepted session fails validate: %s\n", e.what());
    FUZZ_CHECK(false);
  }
  FUZZ_CHECK(s.num_spikes() * 8 <= size);
  FUZZ_CHECK(s.units.size() * 8 <= size);
  FUZZ_CHECK(s.behavior_t_ns.size() * 8 <= size && s.behavior.size() * 4 <= size);
  FUZZ_CHECK(s.trials.size() * 24 <= size);
  replay::write_session_file(s, copy.path());
  const replay::Session again = replay::read_session_file(copy.path());
  FUZZ_CHECK(same(s, again));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check(data, size);
  // Repair the section CRCs: tag[4], u32 crc32(data), u64 length L, data[L], from offset 16.
  std::vector<uint8_t> fixed(data, data + size);
  size_t at = 16;
  while (at + 16 <= fixed.size()) {
    const uint64_t len = fuzz::read_le<uint64_t>(&fixed[at + 8]);
    if (len > fixed.size() - at - 16) break;
    fuzz::write_le<uint32_t>(&fixed[at + 4],
                             fuzz::crc32(&fixed[at + 16], static_cast<size_t>(len)));
    at += 16 + static_cast<size_t>(len);
  }
  if (!std::equal(fixed.begin(), fixed.end(), data)) check(fixed.data(), fixed.size());
  return 0;
}
