// Training of the POSSM-style decoder — torch-free header (link spikeflow::models_torch), so cli/
// can train without compiling LibTorch headers.
// Model: "Generalizable, real-time neural decoding with hybrid state-space models" (POSSM, 2025)
// on the POYO tokenization (Azabou et al., NeurIPS 2023): unit embedding + rotary time embedding,
// latent cross-attention per chunk, recurrent backbone (GRU or diagonal S4D) across chunks.
// Consumers: cli (train / evaluate commands), tests, benchmarks. Implemented in models/trainer.cpp
// (entry points), calibrate.cpp, training_run.cpp (the epoch loop), settings_search.cpp and
// training_data.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/decoding_dataset.h"
#include "models/decode_dataset.h"
#include "models/distributed.h"
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
  /// Exponential moving average of the weights after every optimizer step; 0 = off (training
  /// as without it, bit for bit), else the decay in (0, 1), e.g. 0.999 (warmed up as
  /// min(ema, (1 + step) / (10 + step))). When on, validation (epoch choice, early stopping)
  /// runs on the averaged weights and they are what the checkpoint stores.
  double ema = 0;
  /// Choose lr, weight decay and unit dropout on the validation split before training
  /// (models/settings_search.h): an LR range test (default lr / 100 .. x 30) centres the learning
  /// rates, then successive halving over search_candidates settings (the defaults among them),
  /// rung 1 with max_epochs/8 epochs each, the better half again with twice as many, then the
  /// winner trained in full. With max_seconds the search takes at most 40 % of the budget (fewer
  /// candidates when an epoch would not fit) and the final run the rest. Deterministic for a
  /// seed with max_seconds = 0. The defaults win ties (another candidate must beat them by 0.002
  /// R² in the same rung). What it tried and chose, and why, is printed (progress on) and
  /// stored in the checkpoint's provenance and TrainResult::search_report.
  bool search = false;
  int search_candidates = 6;  ///< 2..8 (calibration uses at most 4)
};

struct TrainResult {
  std::string search_report;  ///< what the search tried and chose (empty without search)
  /// The settings the saved weights were trained with (the search's choice, or the options').
  double lr = 0, weight_decay = 0, unit_dropout = 0, ema = 0;
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

/// One session of a multi-session run: its training and validation chunks (same chunk width
/// and output dims across sessions; units are the session's own).
struct TrainSession {
  std::string name;
  const core::DecodingDataset* train = nullptr;
  const core::DecodingDataset* val = nullptr;
};

struct PretrainOptions {
  TrainOptions train;
  /// Training state (weights, optimizer, RNG, best epoch) is written here after every epoch and,
  /// when the file exists at the start, training resumes from it (same result as uninterrupted).
  std::string resume_path;
  int stop_after_epochs = 0;  ///< > 0: return after this many epochs of this call (tests)
  /// Data-parallel over c10d (models/distributed.h): batch_size is the global batch; rank 0
  /// writes the checkpoint, the resume state and the progress bar.
  DistOptions dist;
};

struct PretrainResult : TrainResult {
  std::vector<double> session_val_r2;  ///< best epoch's mean validation R² per session
  bool interrupted = false;            ///< stopped by stop_after_epochs; no checkpoint written
  int resumed_from_epoch = 0;          ///< 0: started fresh
  double windows_per_s = 0;            ///< training throughput (all ranks), validation excluded
};

/// Pretrains one model on many sessions: a unit vocabulary spanning them (each session's units
/// its own rows), a learned session embedding, batches that mix windows of all sessions, per-
/// session target standardization, unit dropout. Epochs are selected by the mean over sessions
/// of the validation R². Writes a multi-session checkpoint (format version 2).
PretrainResult pretrain_possm(const std::vector<TrainSession>& sessions,
                              const PretrainOptions& opts, const std::string& checkpoint_path);

struct CalibrateOptions {
  TrainOptions train;          ///< lr, weight decay, dropout, patience, seed... of stage 1
  std::string base;            ///< the pretrained multi-session checkpoint
  int reid_epochs = 80;        ///< stage 1: new unit + session embeddings only
  double reid_lr_scale = 3.0;  ///< stage 1 lr = train.lr x this (few parameters, a fixed net)
  bool finetune = true;        ///< stage 2: then every layer, at a lower learning rate
  double finetune_lr_scale = 0.1;
  int finetune_epochs = 40;
};

struct CalibrateResult {
  TrainResult reid;
  TrainResult finetune;        ///< epochs_run 0 when stage 2 did not run
  bool finetune_kept = false;  ///< stage 2 beat stage 1 on validation
  std::vector<std::string> base_sessions;
  PossmConfig base_config;  ///< the base's model config (for a like-for-like scratch comparison)
  std::string search_report;  ///< what the settings search tried and chose (empty without)
};

/// Calibrates a pretrained model to a new session from little data: unit re-identification
/// (new unit embeddings and a new session embedding, initialised from the base's, learned with
/// every other weight frozen), then optional fine-tuning of every layer with early stopping;
/// stage 2 is kept only when it beats stage 1 on validation. Writes a one-session checkpoint of
/// format version 2 whose provenance names the base.
CalibrateResult calibrate_possm(const TrainSession& session, const CalibrateOptions& opts,
                                const std::string& checkpoint_path);

/// Human-readable summary of a POSSM checkpoint: config, width, sessions (name, units), default
/// session, provenance. Throws std::runtime_error naming the file.
std::string describe_possm_checkpoint(const std::string& path);

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
