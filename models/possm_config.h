// PossmConfig: the POSSM-style model's hyper-parameters, shared by the LibTorch model
// (models/possm.h), its trainer (models/trainer.h), the fast streaming path
// (models/fast_possm_decoder.h) and the checkpoint metadata. Torch-free.
#pragma once

#include <string>

namespace spikeflow::models {

/// Model hyper-parameters; stored in the checkpoint. Defaults are POSSM's "small config".
struct PossmConfig {
  int dim = 64;                     ///< token / latent width
  int num_latents = 1;              ///< learned latents per chunk (queries of the cross-attention)
  int num_heads = 2;                ///< query heads; head_dim = dim / num_heads, multiple of 4
  int num_kv_heads = 1;             ///< key/value heads (grouped-query); divides num_heads
  int self_attn_layers = 0;         ///< Perceiver-style self-attention blocks over the latents
  std::string backbone = "gru";     ///< "gru" or "s4d" (diagonal state space, S4D-Lin init)
  int rnn_hidden = 256;             ///< GRU hidden size / S4D channels
  double rope_min_period_s = 1e-4;  ///< rotary time embedding periods, log-spaced in [min, max]
  double rope_max_period_s = 10.0;
};

/// Throws std::invalid_argument listing every problem of the config.
void validate_possm_config(const PossmConfig& config);

}  // namespace spikeflow::models
