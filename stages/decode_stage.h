// DecodeStage: TokenChunks -> Predictions through a models::StreamingDecoder, with the
// guarantees the publisher relies on: one prediction per chunk, in order, never a non-finite
// value (a non-finite model output is replaced by the last good output, flagged, counted, and the
// recurrent state is reset so it cannot stay poisoned).
// Several pending chunks are decoded in one batched call (catch-up after a stall); they are
// flagged kCatchUp. Plain class; one caller at a time (the pipeline's serial decoder node).
// A decoder that throws is counted (DecodeStats::decoder_errors) and its message kept
// (last_error()); the stage never logs: the pipeline reports errors, rate-limited.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/prediction.h"
#include "core/token_chunk.h"
#include "models/streaming_decoder.h"

namespace spikeflow::stages {

struct DecodeStats {
  uint64_t chunks = 0;
  uint64_t batched_calls = 0;  ///< step_many calls (catch-up)
  uint64_t max_batch = 0;
  uint64_t repaired_outputs = 0;  ///< non-finite outputs replaced
  uint64_t decoder_errors = 0;    ///< decoder calls that threw (their chunks repaired)
  uint64_t epoch_resets = 0;      ///< recurrent state reset at the first chunk of a new epoch
  uint64_t warmups = 0;           ///< warm() calls that reached the decoder
  uint64_t warmups_skipped = 0;   ///< ... skipped because a chunk was already pending
};

class DecodeStage {
 public:
  using Clock = int64_t (*)();

  /// decoder must not be null. clock stamps decode_start/decode_end (injectable for tests).
  explicit DecodeStage(std::unique_ptr<models::StreamingDecoder> decoder, Clock clock = nullptr);

  /// Decodes chunks (consecutive, in order) and appends one Prediction per chunk to out.
  void decode(std::span<const core::TokenChunk> chunks, std::vector<core::Prediction>& out);

  /// The decoder's state-only work for the next chunk (StreamingDecoder::prepare_next): call it
  /// after the predictions of decode() are handed on, off the next chunk's critical path. A
  /// throwing decoder is counted like a failed decode and its state reset.
  void prepare_next();

  /// StreamingDecoder::warm (counted in warmups), or, with a chunk already pending, nothing but
  /// counting it in warmups_skipped: warming must never delay a chunk. A throwing decoder is
  /// counted like a failed decode (its state is untouched: warm() changes none).
  void warm(bool chunk_pending);

  /// Hands the caller's threads to the decoder (StreamingDecoder::set_parallel_invoke).
  void set_parallel_invoke(models::StreamingDecoder::ParallelInvoke invoke) {
    decoder_->set_parallel_invoke(std::move(invoke));
  }

  const DecodeStats& stats() const { return stats_; }
  /// What the decoder's last failure said (empty before the first; see decoder_errors).
  const std::string& last_error() const { return last_error_; }
  const models::StreamingDecoder& decoder() const { return *decoder_; }

 private:
  void decode_run(std::span<const core::TokenChunk> chunks, bool catch_up,
                  std::vector<core::Prediction>& out);
  void count_error(const char* what);

  std::unique_ptr<models::StreamingDecoder> decoder_;
  Clock clock_;
  DecodeStats stats_;
  std::string last_error_;
  int dim_;
  std::array<float, core::kMaxOutputDim> last_good_{};
  std::vector<float> values_;                  ///< scratch, grows to max batch
  std::vector<const core::TokenChunk*> ptrs_;  ///< scratch
};

}  // namespace spikeflow::stages
