// libFuzzer target: a ZeroMQ payload into decode_prediction (stages/prediction_codec.h).
// Invariants: a rejected payload says why; an accepted one has 0 <= output_dim <= kMaxOutputDim
// and a size of exactly header (v1: 88, v2: 104) + 4 * output_dim; a v2 payload encodes back to
// the input bytes but for the reserved word (every other byte is a field); a v1 payload encodes to
// v2 with the same fields (chunk_index = seq, epoch 0); the JSON encoder takes any decoded one.
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
  const bool v1 = data[4] == 1;
  const size_t header = v1 ? stages::kPredictionHeaderBytesV1 : stages::kPredictionHeaderBytes;
  FUZZ_CHECK(size == header + 4 * static_cast<size_t>(p.output_dim));
  std::vector<uint8_t> again;
  stages::encode_prediction(p, again);
  FUZZ_CHECK(again.size() ==
             stages::kPredictionHeaderBytes + 4 * static_cast<size_t>(p.output_dim));
  if (!v1) {
    FUZZ_CHECK(std::memcmp(again.data(), data, 100) == 0);
    FUZZ_CHECK(std::memcmp(again.data() + 104, data + 104, size - 104) == 0);
  } else {
    FUZZ_CHECK(p.chunk_index == p.seq && p.epoch == 0);
  }
  core::Prediction q;
  FUZZ_CHECK(stages::decode_prediction(again, q, nullptr));
  FUZZ_CHECK(q.seq == p.seq && q.output_dim == p.output_dim && q.flags == p.flags);
  FUZZ_CHECK(q.chunk_index == p.chunk_index && q.epoch == p.epoch);
  std::string json;
  stages::encode_prediction_json(p, json);
  FUZZ_CHECK(json.size() >= 2 && json.front() == '{' && json.back() == '}');
  return 0;
}
