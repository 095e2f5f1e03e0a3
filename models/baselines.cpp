#include "models/baseline_decoders.h"

#include <stdexcept>

namespace spikeflow::models {

bool is_baseline_kind(const std::string& kind) { return kind == "ridge" || kind == "kalman"; }

std::unique_ptr<StreamingDecoder> load_baseline_decoder(const std::string& checkpoint_path,
                                                        const RuntimeOptions&) {
  throw std::runtime_error("checkpoint '" + checkpoint_path + "': baselines not implemented yet");
}

}  // namespace spikeflow::models
