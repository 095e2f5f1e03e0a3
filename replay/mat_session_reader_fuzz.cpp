// libFuzzer target: a MATLAB TrialData file into read_mat_session (replay/mat_session_reader.h),
// written to a temp file (the reader's API takes a path; libmatio reads MAT v5 and, through
// libhdf5, v7.3).
// Invariants: bad input is a std::runtime_error, nothing else; an accepted session passes
// Session::validate and has the two default behaviour columns.
// Note: libmatio and libhdf5 are not instrumented; their own bugs on hostile files are out of
// scope, the reader's handling of what they return is what this target checks.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>

#include "replay/mat_session_reader.h"
#include "tests/fuzz/fuzz_support.h"

using namespace spikeflow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::FuzzFile file(".mat");
  replay::Session s;
  try {
    s = replay::read_mat_session(file.write(data, size));
  } catch (const std::runtime_error&) {
    return 0;
  }
  try {
    s.validate("fuzz");
  } catch (const std::runtime_error& e) {
    std::fprintf(stderr, "accepted session fails validate: %s\n", e.what());
    FUZZ_CHECK(false);
  }
  FUZZ_CHECK(s.behavior_dim() == 2);
  FUZZ_CHECK(s.behavior.size() == s.behavior_t_ns.size() * 2);
  return 0;
}
