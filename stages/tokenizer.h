// Tokenizer: RawChunk -> TokenChunk, POSSM/POYO style: each spike becomes (model unit index,
// offset inside the chunk in seconds). (channel, unit) pairs not in the model's unit map are
// counted and dropped; the chunk is flagged.
// Plain class, one caller at a time (the pipeline's tokenizer node). No allocation once the
// output chunk's vectors have grown to the largest chunk seen.
#pragma once

#include <cstdint>

#include "core/raw_chunk.h"
#include "core/token_chunk.h"
#include "core/unit_map.h"

namespace spikeflow::stages {

struct TokenizerStats {
  uint64_t tokens = 0;
  uint64_t unknown_unit_events = 0;
};

class Tokenizer {
 public:
  explicit Tokenizer(core::UnitMap unit_map) : unit_map_(std::move(unit_map)) {}

  /// Fills out (cleared first) from chunk; copies seq, times, flags and timing.
  void tokenize(const core::RawChunk& chunk, core::TokenChunk& out);

  const TokenizerStats& stats() const { return stats_; }
  const core::UnitMap& unit_map() const { return unit_map_; }

 private:
  core::UnitMap unit_map_;
  TokenizerStats stats_;
};

}  // namespace spikeflow::stages
