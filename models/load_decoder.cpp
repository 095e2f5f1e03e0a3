#include "models/load_decoder.h"

#include <stdexcept>

#include "models/baseline_decoders.h"
#include "models/checkpoint_file.h"
#include "models/fast_possm_export.h"
#include "models/possm_decoder.h"

namespace spikeflow::models {

bool cuda_available() { return torch::cuda::is_available(); }

std::unique_ptr<StreamingDecoder> load_decoder(const std::string& checkpoint_path,
                                               const RuntimeOptions& options) {
  const std::string kind = checkpoint_kind(checkpoint_path);
  if (kind == kPossmKind) {
    try {
      resolve_device(options);  // fail on the device before the (slower) weight load
    } catch (const std::runtime_error& e) {
      throw std::runtime_error("checkpoint '" + checkpoint_path + "': " + e.what());
    }
    if (options.path != "torch" && options.path != "fast" && options.path != "auto") {
      throw std::runtime_error("checkpoint '" + checkpoint_path + "': unknown decoder path '" +
                               options.path + "' (expected 'torch', 'fast' or 'auto')");
    }
    auto [model, meta] = load_possm_checkpoint(checkpoint_path);
    if (options.path != "torch") {
      const std::string why = fast_possm_unsupported(meta, options);
      if (why.empty()) {
        try {
          return make_fast_possm_decoder(model, meta, options.threads);
        } catch (const std::invalid_argument& e) {
          if (options.path == "fast") {
            throw std::runtime_error("checkpoint '" + checkpoint_path +
                                     "': decoder path 'fast' cannot run this model: " + e.what());
          }
        }
      } else if (options.path == "fast") {
        throw std::runtime_error("checkpoint '" + checkpoint_path +
                                 "': decoder path 'fast' cannot run this model: " + why);
      }
    }
    return std::make_unique<PossmDecoder>(std::move(model), std::move(meta), options);
  }
  if (is_baseline_kind(kind)) return load_baseline_decoder(checkpoint_path, options);
  throw std::runtime_error("checkpoint '" + checkpoint_path + "': unknown decoder kind '" + kind +
                           "'");
}

}  // namespace spikeflow::models
