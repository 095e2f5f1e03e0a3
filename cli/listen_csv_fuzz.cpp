// libFuzzer target: a predictions CSV into read_listen_csv (cli/listen_csv.h), written to a
// temp file (the reader takes a path).
// Invariants: bad input is a std::runtime_error, nothing else; one row per line after the
// header at most; every row has output_dim 2.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>

#include "cli/listen_csv.h"
#include "tests/fuzz/fuzz_support.h"

using namespace spikeflow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzz::FuzzFile file(".csv");
  std::vector<cli::ReceivedPrediction> rows;
  try {
    rows = cli::read_listen_csv(file.write(data, size));
  } catch (const std::runtime_error&) {
    return 0;
  }
  const auto lines = static_cast<size_t>(std::count(data, data + size, uint8_t{'\n'}));
  FUZZ_CHECK(rows.size() <= lines);
  for (const auto& r : rows) FUZZ_CHECK(r.prediction.output_dim == 2);
  return 0;
}
