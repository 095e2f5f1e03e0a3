// StreamingDecoder: the decoder as the live pipeline sees it — no torch types here, so that
// stages/ and pipeline/ never compile LibTorch headers.
// Implemented in models/: the POSSM-style model on LibTorch (possm_decoder.h) or on the torch-free
// fast path (fast_possm_decoder.h), and the ridge and Kalman baselines (baselines.h); a
// checkpoint becomes one through load_decoder() (models/load_decoder.h). Used by
// stages::DecodeStage (one instance, called from one thread at a time) and by offline evaluation.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/token_chunk.h"
#include "core/unit_map.h"

namespace spikeflow::models {

/// Where and how inference runs. Chosen once at load time.
struct RuntimeOptions {
  std::string device = "cpu";  ///< "cpu" or "cuda"; "cuda" on a CPU-only LibTorch is an error
  /// Intra-op threads for inference: LibTorch's; the fast path's step_many() encodes on a
  /// second thread when >= 2 and the caller lends one (set_parallel_invoke; replay, catch-up).
  int threads = 1;
  /// POSSM inference path: "torch" (LibTorch modules), "fast" (models/fast_possm_decoder.h:
  /// plain C++, CPU, single-threaded; an error when the model or device is not supported) or
  /// "auto" (fast when supported, else torch). Baseline decoders ignore it.
  std::string path = "auto";
};

class StreamingDecoder {
 public:
  virtual ~StreamingDecoder() = default;

  /// Clears the recurrent state (start of a session / after a discontinuity).
  virtual void reset() = 0;

  /// Decodes one chunk and advances the recurrent state. Writes output_dim() values, in the
  /// session's units (de-standardized), to out. Unit indices must be in [0, units().size()).
  /// Not thread-safe: one caller at a time.
  virtual void step(const core::TokenChunk& chunk, std::span<float> out) = 0;

  /// Decodes n consecutive chunks in one batched call (catch-up), advancing the state through
  /// all of them; out holds n * output_dim() values. Same results as n calls to step().
  virtual void step_many(std::span<const core::TokenChunk* const> chunks, std::span<float> out) = 0;

  /// Work for the next chunk that depends on the recurrent state only, not on the chunk (the fast
  /// path: the GRU's W_hh h). The live pipeline calls it once a chunk's prediction is handed on,
  /// so that it runs while the pipeline waits for the next chunk instead of on that chunk's
  /// critical path. Never changes any result; optional (step() does the work itself when it has
  /// not been prepared); a decoder without such work does nothing.
  virtual void prepare_next() {}

  /// Brings what the next step() reads (weights, tables, work buffers, code) back into the cache,
  /// because in the live pipeline a step runs once per chunk and finds them evicted by whatever
  /// ran in between.
  /// The live pipeline calls it shortly before the next chunk is due (decoder.warmup_margin_us),
  /// never while a chunk waits. Changes no state and no result; a decoder with nothing worth
  /// warming does nothing.
  virtual void warm() {}

  /// Runs both functions, at the same time where a thread is free, and returns when both have.
  using ParallelInvoke =
      std::function<void(const std::function<void()>&, const std::function<void()>&)>;
  /// The pipeline lends its threads this way (the decoder owns none): a decoder that can split
  /// a batched call uses it in step_many(); others ignore it. Results never depend on it.
  virtual void set_parallel_invoke(ParallelInvoke) {}

  virtual int output_dim() const = 0;
  /// The unit map the model was trained with: model unit i = units()[i].
  virtual const std::vector<core::UnitKey>& units() const = 0;
  /// Chunk width the model was trained on, device ns.
  virtual int64_t chunk_width_ns() const = 0;
  /// Short description for logs and profiles ("possm-torch d64 gru256 cpu").
  virtual std::string describe() const = 0;
};

}  // namespace spikeflow::models
