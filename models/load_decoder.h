// load_decoder: a StreamingDecoder from any checkpoint the trainers write (POSSM on the LibTorch or
// the fast path, ridge, Kalman), chosen by the checkpoint's kind. Torch-free header; implemented
// in models/load_decoder.cpp, part of spikeflow::models_torch (a POSSM checkpoint's weights are a
// torch archive), so only what links that target (cli, benchmarks, tests) can load a checkpoint:
// stages/ and pipeline/ take a ready decoder (models/streaming_decoder.h).
#pragma once

#include <memory>
#include <string>

#include "models/streaming_decoder.h"

namespace spikeflow::models {

/// Whether this build can run inference on device "cuda" (a CUDA LibTorch that sees a GPU).
/// Torch-free, so that a preflight can ask before loading anything.
bool cuda_available();

/// Loads a checkpoint written by the trainer. Throws std::runtime_error whose message names the
/// file and what is wrong (missing, truncated, corrupt, wrong kind, unsupported device).
std::unique_ptr<StreamingDecoder> load_decoder(const std::string& checkpoint_path,
                                               const RuntimeOptions& options);

}  // namespace spikeflow::models
