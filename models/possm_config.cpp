#include "models/possm_config.h"

#include <stdexcept>
#include <string>
#include <vector>

namespace spikeflow::models {

void validate_possm_config(const PossmConfig& c) {
  std::vector<std::string> errors;
  if (c.dim <= 0) errors.push_back("dim must be > 0 (got " + std::to_string(c.dim) + ")");
  if (c.num_latents <= 0)
    errors.push_back("num_latents must be > 0 (got " + std::to_string(c.num_latents) + ")");
  if (c.num_heads <= 0)
    errors.push_back("num_heads must be > 0 (got " + std::to_string(c.num_heads) + ")");
  if (c.num_kv_heads <= 0)
    errors.push_back("num_kv_heads must be > 0 (got " + std::to_string(c.num_kv_heads) + ")");
  if (c.num_heads > 0 && c.num_kv_heads > 0 && c.num_heads % c.num_kv_heads != 0) {
    errors.push_back("num_kv_heads (" + std::to_string(c.num_kv_heads) +
                     ") must divide num_heads (" + std::to_string(c.num_heads) + ")");
  }
  if (c.dim > 0 && c.num_heads > 0 &&
      (c.dim % c.num_heads != 0 || (c.dim / c.num_heads) % 4 != 0)) {
    errors.push_back("dim / num_heads must be a whole multiple of 4 (dim " + std::to_string(c.dim) +
                     ", num_heads " + std::to_string(c.num_heads) + ")");
  }
  if (c.self_attn_layers < 0) errors.push_back("self_attn_layers must be >= 0");
  if (c.backbone != "gru" && c.backbone != "s4d") {
    errors.push_back("backbone must be 'gru' or 's4d' (got '" + c.backbone + "')");
  }
  if (c.rnn_hidden <= 0)
    errors.push_back("rnn_hidden must be > 0 (got " + std::to_string(c.rnn_hidden) + ")");
  if (!(c.rope_min_period_s > 0) || !(c.rope_max_period_s >= c.rope_min_period_s)) {
    errors.push_back("rotary periods need 0 < rope_min_period_s <= rope_max_period_s");
  }
  if (!errors.empty()) {
    std::string msg = "invalid POSSM config:";
    for (const auto& e : errors) msg += "\n  - " + e;
    throw std::invalid_argument(msg);
  }
}

}  // namespace spikeflow::models
