#include "models/decode_dataset.h"

#include <algorithm>
#include <span>

namespace spikeflow::models {

std::vector<float> decode_dataset(StreamingDecoder& dec, const core::DecodingDataset& data) {
  const auto d = static_cast<size_t>(dec.output_dim());
  std::vector<float> out(data.chunks.size() * d);
  dec.reset();
  // Blocks through step_many: the same results as one step() per chunk (tested), fewer calls.
  constexpr size_t kBlock = 64;
  std::vector<const core::TokenChunk*> ptrs;
  for (size_t i = 0; i < data.chunks.size(); i += kBlock) {
    const size_t n = std::min(kBlock, data.chunks.size() - i);
    ptrs.clear();
    for (size_t j = 0; j < n; ++j) ptrs.push_back(&data.chunks[i + j]);
    dec.step_many(ptrs, std::span<float>(out.data() + i * d, n * d));
  }
  return out;
}

}  // namespace spikeflow::models
