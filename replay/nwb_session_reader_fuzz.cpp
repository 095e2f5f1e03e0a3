// libFuzzer target: an NWB (HDF5) file into read_nwb_session (replay/nwb_session_reader.h),
// written to a temp file (the reader's API takes a path). Byte 0 of the input picks the read
// options (behaviour name, condition column); the rest is the file.
// Invariants: bad input is a std::runtime_error, nothing else; an accepted session passes
// Session::validate and agrees with the reader's stats.
// Note: libhdf5 itself is not instrumented; its own bugs on hostile files are out of scope, the
// reader's handling of what libhdf5 returns is what this target checks.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>

#include "replay/nwb_session_reader.h"
#include "tests/fuzz/fuzz_support.h"

using namespace spikeflow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static fuzz::FuzzFile file(".nwb");
  replay::NwbReadOptions opts;
  if (data[0] & 1) opts.condition_column = "target_id";
  if (data[0] & 2) opts.behavior_name = "";
  if (data[0] & 4) opts.behavior_names = {"a", "b"};
  const std::string& path = file.write(data + 1, size - 1);
  replay::NwbReadStats stats;
  replay::Session s;
  try {
    s = replay::read_nwb_session(path, opts, &stats);
  } catch (const std::runtime_error&) {
    return 0;
  }
  try {
    s.validate("fuzz");
  } catch (const std::runtime_error& e) {
    std::fprintf(stderr, "accepted session fails validate: %s\n", e.what());
    FUZZ_CHECK(false);
  }
  FUZZ_CHECK(stats.units == s.units.size() && stats.spikes == s.num_spikes());
  FUZZ_CHECK(stats.trials == s.trials.size() && stats.behavior_samples == s.behavior_t_ns.size());
  FUZZ_CHECK(stats.empty_units <= stats.units);
  return 0;
}
