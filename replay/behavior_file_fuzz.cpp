// libFuzzer target: a behaviour CSV into read_behavior_file (replay/behavior_file.h), written to
// a temp file (the reader takes a path).
// Invariants: bad input is a std::runtime_error, nothing else; a series that reads has names,
// at least two samples, strictly ascending times, one value per (sample, name), all finite; and
// it writes back (write_behavior_csv) into a file that reads again with the same shape.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>

#include "replay/behavior_file.h"
#include "tests/fuzz/fuzz_support.h"

using namespace spikeflow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::FuzzFile file(".csv");
  static fuzz::FuzzFile again(".rt.csv");
  replay::BehaviorSeries b;
  try {
    b = replay::read_behavior_file(file.write(data, size));
  } catch (const std::runtime_error&) {
    return 0;
  }
  FUZZ_CHECK(!b.names.empty());
  FUZZ_CHECK(b.t_ns.size() >= 2);
  FUZZ_CHECK(b.values.size() == b.t_ns.size() * b.names.size());
  for (size_t i = 1; i < b.t_ns.size(); ++i) FUZZ_CHECK(b.t_ns[i] > b.t_ns[i - 1]);
  for (float v : b.values) FUZZ_CHECK(std::isfinite(v));
  // Written back, it reads again with the same shape where nanoseconds are exact in a double
  // (|t| < 1e6 s; beyond, distinct times may round together on reading, which is an error).
  if (std::llabs(b.t_ns.front()) >= 1'000'000'000'000'000 ||
      std::llabs(b.t_ns.back()) >= 1'000'000'000'000'000)
    return 0;
  replay::write_behavior_csv(b, again.path());
  const replay::BehaviorSeries r = replay::read_behavior_file(again.path());
  FUZZ_CHECK(r.names.size() == b.names.size());
  FUZZ_CHECK(r.t_ns == b.t_ns);
  FUZZ_CHECK(r.values.size() == b.values.size());
  return 0;
}
