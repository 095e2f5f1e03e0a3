#include "stages/prediction_codec.h"

#include <iterator>
#include <fmt/format.h>

#include "core/byte_io.h"

namespace spikeflow::stages {

using core::load_le;
using core::store_le;

void encode_prediction(const core::Prediction& p, std::vector<uint8_t>& out) {
  const size_t n = static_cast<size_t>(p.output_dim);
  out.resize(kPredictionHeaderBytes + 4 * n);
  uint8_t* b = out.data();
  store_le<uint32_t>(b + 0, kPredictionMagic);
  store_le<uint16_t>(b + 4, kPredictionVersion);
  store_le<uint16_t>(b + 6, static_cast<uint16_t>(n));
  store_le<uint32_t>(b + 8, p.flags);
  store_le<uint32_t>(b + 12, p.n_tokens);
  store_le<int64_t>(b + 16, p.seq);
  store_le<int64_t>(b + 24, p.start_ns);
  store_le<int64_t>(b + 32, p.end_ns);
  store_le<int64_t>(b + 40, p.timing.trigger_arrival_ns);
  store_le<int64_t>(b + 48, p.timing.close_ns);
  store_le<int64_t>(b + 56, p.timing.tokenize_ns);
  store_le<int64_t>(b + 64, p.timing.decode_start_ns);
  store_le<int64_t>(b + 72, p.timing.decode_end_ns);
  store_le<int64_t>(b + 80, p.timing.publish_ns);
  store_le<int64_t>(b + 88, p.chunk_index);
  store_le<uint32_t>(b + 96, p.epoch);
  store_le<uint32_t>(b + 100, 0);
  for (size_t i = 0; i < n; ++i) store_le<float>(b + kPredictionHeaderBytes + 4 * i, p.values[i]);
}

void encode_prediction_json(const core::Prediction& p, std::string& out) {
  out.clear();
  auto it = std::back_inserter(out);
  fmt::format_to(
      it,
      R"({{"version":{},"seq":{},"chunk_index":{},"epoch":{},"start_ns":{},"end_ns":{},"flags":{},)"
      R"("n_tokens":{},"values":[)",
      kPredictionVersion, p.seq, p.chunk_index, p.epoch, p.start_ns, p.end_ns, p.flags, p.n_tokens);
  for (int i = 0; i < p.output_dim; ++i) {
    fmt::format_to(it, "{}{:.9g}", i ? "," : "", p.values[static_cast<size_t>(i)]);
  }
  const auto& t = p.timing;
  fmt::format_to(it,
                 R"(],"timing":{{"trigger_arrival_ns":{},"close_ns":{},"tokenize_ns":{},)"
                 R"("decode_start_ns":{},"decode_end_ns":{},"publish_ns":{}}}}})",
                 t.trigger_arrival_ns, t.close_ns, t.tokenize_ns, t.decode_start_ns,
                 t.decode_end_ns, t.publish_ns);
}

bool decode_prediction(std::span<const uint8_t> payload, core::Prediction& p, std::string* error) {
  auto fail = [&](const std::string& m) {
    if (error) *error = m;
    return false;
  };
  if (payload.size() < kPredictionHeaderBytesV1)
    return fail("prediction payload shorter than its header");
  const uint8_t* b = payload.data();
  if (load_le<uint32_t>(b) != kPredictionMagic) return fail("prediction payload has a bad magic");
  const uint16_t version = load_le<uint16_t>(b + 4);
  if (version != 1 && version != kPredictionVersion) return fail("unsupported prediction version");
  const size_t header = version == 1 ? kPredictionHeaderBytesV1 : kPredictionHeaderBytes;
  const size_t n = load_le<uint16_t>(b + 6);
  if (n > static_cast<size_t>(core::kMaxOutputDim)) return fail("prediction output_dim too large");
  if (payload.size() != header + 4 * n)
    return fail("prediction payload size disagrees with output_dim");
  p.output_dim = static_cast<int>(n);
  p.flags = load_le<uint32_t>(b + 8);
  p.n_tokens = load_le<uint32_t>(b + 12);
  p.seq = load_le<int64_t>(b + 16);
  p.start_ns = load_le<int64_t>(b + 24);
  p.end_ns = load_le<int64_t>(b + 32);
  p.timing.trigger_arrival_ns = load_le<int64_t>(b + 40);
  p.timing.close_ns = load_le<int64_t>(b + 48);
  p.timing.tokenize_ns = load_le<int64_t>(b + 56);
  p.timing.decode_start_ns = load_le<int64_t>(b + 64);
  p.timing.decode_end_ns = load_le<int64_t>(b + 72);
  p.timing.publish_ns = load_le<int64_t>(b + 80);
  p.chunk_index = version == 1 ? p.seq : load_le<int64_t>(b + 88);
  p.epoch = version == 1 ? 0 : load_le<uint32_t>(b + 96);
  for (size_t i = 0; i < n; ++i) p.values[i] = load_le<float>(b + header + 4 * i);
  return true;
}

}  // namespace spikeflow::stages
