// One training call's epoch loop, shared by train_possm, pretrain_possm and calibrate_possm:
// AdamW with linear warmup and cosine decay (over the epochs or the wall-clock budget), unit
// dropout, early stopping on the validation R² of a streaming decode, the best epoch's weights
// kept, optional data-parallel gradient sync (models/grad_sync.h) and a resume file.
// Internal to models/ (includes torch); implemented in training_run.cpp (the loop) and
// training_resume.cpp (the resume file). Not thread-safe: one thread drives a run.
#pragma once

#include <chrono>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "models/grad_sync.h"
#include "models/possm_decoder.h"
#include "models/settings_search.h"
#include "models/trainer.h"
#include "models/training_data.h"

namespace spikeflow::models::detail {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0);

/// Copies of a model's parameters then buffers, in registration order.
struct Snapshot {
  std::vector<torch::Tensor> tensors;
};

Snapshot snapshot(Possm& model);
void restore(Possm& model, const Snapshot& s);

/// Mean of v, -inf when not finite (a diverged model never wins a comparison).
double mean_of(const std::vector<double>& v);

/// Which parameters train: everything, or only the unit and session embeddings (calibration's
/// unit re-identification, fine-tuning's first epochs).
enum class Trainable { kAll, kEmbeddings };

/// One session's slot in a run: its data with unit indices moved to the model's vocabulary.
struct Slot {
  std::string name;
  const core::DecodingDataset* train = nullptr;
  const core::DecodingDataset* val = nullptr;
  core::DecodingDataset shifted;  ///< train with unit + unit_begin (multi-session only)
  int64_t unit_begin = 0;
  torch::Tensor targets;  ///< standardized (chunks, output_dim)
  std::vector<std::pair<size_t, size_t>> runs;
  const core::DecodingDataset& chunks() const { return unit_begin == 0 ? *train : shifted; }
};

/// The learning-rate schedule's fixed quantities (linear warmup, then cosine decay).
struct Schedule {
  double total_steps = 0;  ///< optimizer steps over max_epochs
  double warmup = 1;       ///< warmup steps
};

/// Everything one training call carries from epoch to epoch, for one session (train_possm: a
/// single-session model, checkpoint format 1) or many (a session embedding, format 2).
/// opts and the sessions' datasets must outlive the run.
class TrainingRun {
 public:
  TrainingRun(const std::vector<TrainSession>& sessions, const TrainOptions& opts,
              Clock::time_point t0, PossmMeta meta, Possm model, Trainable trainable,
              const DistOptions* dist = nullptr);

  /// Epochs until max_epochs, patience or the time budget runs out; then the best epoch's
  /// weights are restored and, when checkpoint_path is not empty, written there.
  TrainResult run(const std::string& checkpoint_path, const std::string& resume_path = "",
                  int stop_after = 0);

  bool interrupted() const { return interrupted_; }
  double windows_per_s() const {
    return train_seconds_ > 0 ? windows_trained_ / train_seconds_ : 0.0;
  }
  int resumed_from() const { return resumed_from_; }
  const std::vector<double>& best_session_r2() const { return best_session_r2_; }
  Possm& model() { return model_; }
  PossmMeta& meta() { return meta_; }

  /// LR range test (Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017,
  /// sec. 3.3): `steps` optimizer steps from the current weights with the learning rate rising
  /// exponentially from lo to hi; returns the smoothed training loss per step. Stops early once
  /// the loss diverges (non-finite, or 4x its minimum) or, with a budget, after opts.max_seconds.
  /// Trains the weights: run it on a throwaway run.
  LrCurve lr_sweep(double lo, double hi, int steps);

 private:
  bool finetune() const { return !opts_.finetune_from.empty(); }

  std::vector<Window> epoch_windows(std::mt19937_64& rng) const;

  /// Mean R² per session (one decode of each session's validation set from reset()); keeps the
  /// per-dimension R² of a single session in last_dims_.
  std::vector<double> validate();

  void set_trainable(bool embedding_only);

  /// The windows [b0, b1) of an epoch as one packed batch (unit dropout drawn from rng) and their
  /// standardized targets (B, C, output_dim), C = the longest window.
  std::pair<PackedBatch, torch::Tensor> make_batch(const std::vector<Window>& windows, size_t b0,
                                                   size_t b1);

  /// One pass over a fresh shuffle of the training windows; returns the mean batch loss. Stops
  /// early (out_of_time_) when the budget would not leave time for the validation.
  double train_epoch(bool frozen);

  /// One AdamW step on windows [b0, b1) at learning rate lr (gradients all-reduced, clipped to
  /// norm 1; the EMA updated when on); returns the global batch's loss (non-finite: diverged).
  double optimizer_step(const std::vector<Window>& windows, size_t b0, size_t b1, double lr);

  /// ema_ = d ema_ + (1 - d) weights, d = min(opts.ema, (1 + step) / (10 + step)).
  void update_ema();
  /// Exchanges the model's parameters with their EMA (validation and the best snapshot run on
  /// the average).
  void swap_ema();

  /// Records the epoch and snapshots the weights when its mean validation R² beats the best by
  /// 1e-4 (the first epoch always does); counts towards patience otherwise, except while frozen.
  /// Returns the mean R² (-inf when not finite).
  double keep_if_best(int epoch, bool frozen, const std::vector<double>& per_session);

  /// One-line progress bar on stderr (rewritten in place); per-session R² for a few sessions.
  void print_progress(int epoch, bool frozen, double loss, double mean_r2, double epoch_s) const;

  /// The resume state: a CheckpointFile of kind "possm-resume" (container checks included).
  void save_resume(const std::string& path, int epoch, bool finished);

  /// Returns the last completed epoch.
  int load_resume(const std::string& path);

  std::vector<Slot> slots_;
  const TrainOptions& opts_;
  const Clock::time_point t0_;
  std::mt19937_64 rng_;
  PossmMeta meta_;
  Possm model_;
  Trainable trainable_;
  bool multi_ = false;
  Schedule schedule_;
  std::vector<torch::Tensor> params_;
  torch::optim::AdamW optimizer_;
  TrainResult result_;
  Snapshot best_;
  std::vector<double> best_session_r2_, last_dims_;
  bool have_best_ = false;
  double best_r2_ = -std::numeric_limits<double>::infinity();
  int since_best_ = 0;
  double step_ = 0;  // optimizer steps so far
  double last_val_seconds_ = 0;
  bool out_of_time_ = false, stopped_ = false, interrupted_ = false;
  int resumed_from_ = 0;
  int threads_now_;
  std::unique_ptr<GradientSync> sync_;
  int rank_ = 0, world_ = 1;
  bool show_progress_ = true;
  double windows_trained_ = 0, train_seconds_ = 0;
  std::vector<torch::Tensor> ema_;  ///< EMA of params_ (empty: off)
};

}  // namespace spikeflow::models::detail
