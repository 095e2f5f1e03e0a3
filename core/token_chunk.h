// TokenChunk: one chunk as the decoder sees it — a set of spike tokens (model unit index, offset
// of the spike inside the chunk in seconds), after POSSM / POYO tokenization.
// Produced by stages::Tokenizer (live) and replay's dataset builder (training, evaluation);
// consumed by models::StreamingDecoder and the trainer. Both producers use core/time.h so that
// live and offline chunks are identical.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/chunk_timing.h"

namespace spikeflow::core {

struct TokenChunk {
  int64_t seq = 0;
  uint32_t epoch = 0;  ///< device-clock epoch (binner): +1 at each clock jump or device restart
  /// Place in the decoder inbox's admission order (pipeline::DecoderInbox::admit stamps it): the
  /// flow graph can hand a serial node its messages out of order, the inbox puts them back.
  uint64_t admission = 0;
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  uint32_t flags = 0;           ///< core::ChunkFlag bits
  std::vector<int32_t> unit;    ///< model unit index in [0, num_units), one per token
  std::vector<float> offset_s;  ///< spike time minus start_ns, seconds, in [0, width)
  ChunkTiming timing;

  size_t size() const { return unit.size(); }
  bool empty() const { return unit.empty(); }
  void clear_tokens() {
    unit.clear();
    offset_s.clear();
  }
};

}  // namespace spikeflow::core
