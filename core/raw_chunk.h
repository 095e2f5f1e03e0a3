// RawChunk: the spikes of one closed time window, as the binner emits it.
// Produced by stages::Binner; consumed by stages::Tokenizer.
#pragma once

#include <cstdint>
#include <vector>

#include "core/chunk_timing.h"
#include "core/spike_event.h"

namespace spikeflow::core {

struct RawChunk {
  int64_t seq = 0;       ///< chunk index: start_ns / width_ns (device clock)
  uint32_t epoch = 0;    ///< device-clock epoch (binner): +1 at each clock jump or device restart
  int64_t start_ns = 0;  ///< device time, inclusive
  int64_t end_ns = 0;    ///< device time, exclusive
  uint32_t flags = 0;    ///< core::ChunkFlag bits
  std::vector<SpikeEvent> events;  ///< in arrival order; all with start_ns <= t_ns < end_ns
  ChunkTiming timing;
};

}  // namespace spikeflow::core
