// Loading side of the baseline decoders (ridge, Kalman) for load_decoder's dispatch by kind.
// Internal to models/, torch-free. Implemented in models/baselines.cpp.
#pragma once

#include <memory>
#include <string>

#include "models/streaming_decoder.h"

namespace spikeflow::models {

/// True for the kind tags the baselines write ("ridge", "kalman").
bool is_baseline_kind(const std::string& kind);

/// Loads a baseline checkpoint; throws std::runtime_error naming the file and the problem.
/// The baselines run on the CPU only: a "cuda" device is an error, like for a CPU-only LibTorch.
std::unique_ptr<StreamingDecoder> load_baseline_decoder(const std::string& checkpoint_path,
                                                        const RuntimeOptions& options);

}  // namespace spikeflow::models
