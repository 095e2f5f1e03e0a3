// Load-time bridge from the LibTorch POSSM model to the fast streaming path: reads the weights of
// a loaded model (models/possm.h) and precomputes the tables FastPossmDecoder runs on. The only
// torch-dependent part of the fast path; internal to models/ (includes torch), used by
// load_decoder() and by the tests and benchmarks that compare both paths on the same weights.
#pragma once

#include <memory>
#include <string>

#include "models/fast_possm_decoder.h"
#include "models/possm_decoder.h"

namespace spikeflow::models {

/// Why the fast path cannot serve this model with these runtime options; empty when it can.
/// The fast path covers every POSSM config (GRU and S4D, grouped-query heads, any number of
/// latents and self-attention layers) but runs on the CPU only, single-threaded.
std::string fast_possm_unsupported(const PossmMeta& meta, const RuntimeOptions& runtime);

/// The fast path's weights from a model (evaluated with the model's own modules, under
/// NoGradGuard; the model is not changed). Throws std::invalid_argument when the model uses
/// something the fast path does not implement (a tanh-approximated GELU, a multi-layer GRU).
FastPossmWeights export_fast_possm_weights(Possm& model, const PossmMeta& meta);

/// make_unique<FastPossmDecoder>(export_fast_possm_weights(model, meta), threads).
std::unique_ptr<FastPossmDecoder> make_fast_possm_decoder(Possm& model, const PossmMeta& meta,
                                                          int threads = 1);

}  // namespace spikeflow::models
