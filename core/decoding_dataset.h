// DecodingDataset: a session cut into consecutive chunks of tokens, each with its target
// (behaviour, e.g. hand velocity, at the chunk's centre). The one form training, evaluation and
// the baselines consume.
// Produced by replay::build_dataset (from a replay::Session); consumed by models (trainer,
// baselines, offline evaluation).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/token_chunk.h"
#include "core/unit_map.h"

namespace spikeflow::core {

struct DecodingDataset {
  int64_t width_ns = 50'000'000;  ///< chunk width, device ns
  std::vector<UnitKey> units;     ///< model unit i = units[i]
  int output_dim = 2;             ///< target dimensions (vx, vy)
  std::vector<std::string> output_names{"vx", "vy"};
  std::vector<TokenChunk> chunks;  ///< ordered by seq; consecutive where seq increases by 1
  std::vector<float> targets;      ///< chunks.size() * output_dim, row-major
  std::vector<int32_t> trial;      ///< per chunk: trial index, or -1 outside trials

  size_t size() const { return chunks.size(); }
  const float* target(size_t i) const {
    return targets.data() + i * static_cast<size_t>(output_dim);
  }
};

}  // namespace spikeflow::core
