// Prediction: the decoder's output for one chunk (e.g. hand velocity vx, vy).
// Produced by stages::DecodeStage; consumed by the publisher (wire format in
// stages/prediction_codec.h), the recorder and metrics.
#pragma once

#include <array>
#include <cstdint>

#include "core/chunk_timing.h"

namespace spikeflow::core {

constexpr int kMaxOutputDim = 8;

struct Prediction {
  /// Wire sequence number: +1 per published prediction for the whole run, never repeated, never
  /// back (stamped by stages::PublishGuard). Before publishing it equals chunk_index.
  int64_t seq = 0;
  int64_t chunk_index =
      0;               ///< the chunk's place on the device clock: start_ns / width, in its epoch
  uint32_t epoch = 0;  ///< device-clock epoch (see stages/binner.h): +1 per clock jump / restart
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  uint32_t flags = 0;                         ///< core::ChunkFlag bits
  uint32_t n_tokens = 0;                      ///< spikes that went into this chunk
  int output_dim = 0;                         ///< number of valid entries in values
  std::array<float, kMaxOutputDim> values{};  ///< decoded outputs in the session's units (cm/s)
  ChunkTiming timing;
};

}  // namespace spikeflow::core
