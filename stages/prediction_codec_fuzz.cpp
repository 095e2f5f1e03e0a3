// libFuzzer target: a ZeroMQ payload into decode_prediction (stages/prediction_codec.h).
// Invariants: a rejected payload says why; an accepted one has 0 <= output_dim <= kMaxOutputDim
// and a size of exactly header + 4 * output_dim, and encoding it gives back the input bytes
// (every byte of the format is a field); the JSON encoder takes any decoded prediction.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "stages/prediction_codec.h"
#include "tests/fuzz/fuzz_support.h"

using namespace spikeflow;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  core::Prediction p;
  std::string error;
  if (!stages::decode_prediction(std::span<const uint8_t>(data, size), p, &error)) {
    FUZZ_CHECK(!error.empty());
    return 0;
  }
  FUZZ_CHECK(p.output_dim >= 0 && p.output_dim <= core::kMaxOutputDim);
  FUZZ_CHECK(size == stages::kPredictionHeaderBytes + 4 * static_cast<size_t>(p.output_dim));
  std::vector<uint8_t> again;
  stages::encode_prediction(p, again);
  FUZZ_CHECK(again.size() == size);
  FUZZ_CHECK(std::memcmp(again.data(), data, size) == 0);
  core::Prediction q;
  FUZZ_CHECK(stages::decode_prediction(again, q, nullptr));
  FUZZ_CHECK(q.seq == p.seq && q.output_dim == p.output_dim && q.flags == p.flags);
  std::string json;
  stages::encode_prediction_json(p, json);
  FUZZ_CHECK(json.size() >= 2 && json.front() == '{' && json.back() == '}');
  return 0;
}
