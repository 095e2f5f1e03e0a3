// Training of the POSSM-style decoder — torch-free header (link spikeflow::models_torch), so cli/
// can train without compiling LibTorch headers.
// Model: "Generalizable, real-time neural decoding with hybrid state-space models" (POSSM, 2025)
// on the POYO tokenization (Azabou et al., NeurIPS 2023): unit embedding + rotary time embedding,
// latent cross-attention per chunk, recurrent backbone (GRU or diagonal S4D) across chunks.
// Consumers: cli (train / evaluate commands), tests, benchmarks. Implemented in models/trainer.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/decoding_dataset.h"
#include "models/decode_dataset.h"
#include "models/possm_config.h"
#include "models/streaming_decoder.h"

namespace spikeflow::models {

struct TrainOptions {
  PossmConfig model;
  int max_epochs = 60;
  int batch_size = 16;     ///< windows per optimizer step (16 converges fastest on 2 cores)
  int window_chunks = 20;  ///< consecutive chunks per training window (recurrent context)
  double lr = 3e-3;        ///< AdamW peak learning rate (linear warmup, cosine decay)
  double weight_decay = 1e-2;
  double unit_dropout = 0.1;  ///< probability of dropping all tokens of a unit in a window
  int patience = 8;           ///< epochs without validation improvement before stopping
  uint64_t seed = 0;
  /// torch intra-op threads while training. With a time budget (max_seconds > 0) and threads > 1,
  /// each epoch first measures `threads` against 1 thread (~30 ms) and trains with the faster:
  /// on a busy 2-core machine OpenMP's barriers make 2 threads 3-5x slower than 1.
  int threads = 2;
  /// Wall-clock budget in seconds; 0 = no limit. When the budget runs out, training stops and the
  /// best epoch so far is saved. With a budget the cosine schedule anneals over the budget.
  double max_seconds = 0;
  bool progress = true;  ///< one-line progress bar on stderr
  /// Checkpoint to fine-tune from (its config is used; units it knows keep their embeddings).
  /// New units are learned first with everything else frozen, then everything is unfrozen.
  std::string finetune_from;
  int finetune_frozen_epochs = 5;
};

struct TrainResult {
  double best_val_r2 = 0;
  std::vector<double> best_val_r2_per_dim;
  int best_epoch = 0;  ///< 1-based epoch whose weights were saved
  int epochs_run = 0;
  double seconds = 0;
  size_t num_parameters = 0;
};

/// Trains on train, selects the epoch by validation R² (core::mean_r2 of a streaming decode of
/// val from reset()), and writes the best weights to checkpoint_path (tmp file, then rename).
/// Seeded and repeatable for a fixed max_seconds = 0. Throws std::invalid_argument on bad options
/// or empty/mismatched datasets, std::runtime_error on I/O errors (naming the file).
TrainResult train_possm(const core::DecodingDataset& train, const core::DecodingDataset& val,
                        const TrainOptions& opts, const std::string& checkpoint_path);

/// A POSSM decoder with freshly initialised (untrained) weights: for benchmarks and tests.
/// Targets are not standardized (mean 0, std 1).
std::unique_ptr<StreamingDecoder> make_untrained_possm(const PossmConfig& config,
                                                       std::vector<core::UnitKey> units,
                                                       int output_dim, int64_t width_ns,
                                                       const RuntimeOptions& runtime,
                                                       uint64_t seed = 0);

/// Writes an untrained POSSM checkpoint (for tests of loading and of the pipeline).
void save_untrained_possm(const std::string& checkpoint_path, const PossmConfig& config,
                          std::vector<core::UnitKey> units, int output_dim, int64_t width_ns,
                          uint64_t seed = 0);

}  // namespace spikeflow::models
