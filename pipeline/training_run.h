// A whole training run as `spikeflow train` / `spikeflow calibrate` and the Python module's
// spikeflow.train / spikeflow.calibrate do it, so that the CLI and Python cannot drift apart: the
// session cut into the split every command shares (pipeline/data_split.h), the model trained
// (models/trainer.h), the held-out part decoded causally chunk by chunk, the classic baselines
// (ridge, Kalman) fitted on the same data, and the comparison printed and returned.
// Torch-free header (the trainer is in spikeflow::models_torch). Blocking; runs on the caller's
// thread (the trainer's progress bar goes to stderr). The report text goes to `print` as it is
// produced, one or more whole lines per call.
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "models/trainer.h"
#include "replay/session.h"

namespace spikeflow::pipeline {

/// Receives the report text (whole lines, '\n'-terminated). Called on the caller's thread.
using ReportSink = std::function<void(std::string_view)>;

/// A sink writing to stdout (flushed), for the CLI.
ReportSink stdout_sink();

/// R² of one decoder on the held-out part, per output dimension.
struct R2Row {
  std::string name;
  std::vector<double> r2;
  double mean() const;
};

struct TrainRunOptions {
  double width_ms = 50.0;
  double train_fraction = 0.7;  ///< first part used for training
  double val_fraction = 0.1;    ///< next part used for early stopping; the rest is held out
  models::TrainOptions train;
  bool baselines = true;      ///< also fit and score ridge and Kalman on the training part
  std::string baselines_out;  ///< non-empty: save them as PREFIX.ridge.ckpt / PREFIX.kalman.ckpt
};

struct TrainRunReport {
  models::TrainResult result;
  size_t train_chunks = 0, val_chunks = 0, test_chunks = 0;
  std::vector<R2Row> test;  ///< held-out R²: "possm", then "ridge (250 ms)" and "kalman"
};

/// Trains a POSSM checkpoint on `session` into `checkpoint` and scores it on the held-out part.
/// Throws what models::train_possm and the baselines throw (std::invalid_argument on bad options
/// or empty splits, std::runtime_error naming the file on I/O errors).
TrainRunReport run_training(const replay::Session& session, const std::string& checkpoint,
                            const TrainRunOptions& options, const ReportSink& print);

struct CalibrateRunOptions {
  models::CalibrateOptions calibrate;  ///< base checkpoint, stage epochs and learning rates
  double calibration_s = 60.0;         ///< calibration block: the session's first seconds;
                                       ///< <= 0: all before the held-out part
  double test_fraction = 0.2;          ///< held-out part: the session's last trials
  double val_share = 0.2;  ///< end of the calibration block used for early stopping
  bool scratch = true;     ///< also train the same architecture from scratch on the block
};

struct CalibrateRunReport {
  models::CalibrateResult result;
  size_t calibration_chunks = 0, train_chunks = 0, val_chunks = 0, test_chunks = 0;
  /// Held-out R²: "calibrated", ["scratch"], "ridge (250 ms)", "kalman", all fitted on the same
  /// calibration block.
  std::vector<R2Row> test;
  size_t best = 0;  ///< index in test of the best mean R² (0: the calibrated model)
};

/// Calibrates the pretrained options.calibrate.base to `session` (named `label` in messages, its
/// file name stem in the checkpoint) into `checkpoint`, and compares it on the held-out part.
/// Throws std::runtime_error "calibrate: the N s calibration block overlaps the held-out ..." when
/// the block reaches into the held-out part, and what models::calibrate_possm throws.
CalibrateRunReport run_calibration(const replay::Session& session, const std::string& label,
                                   const std::string& checkpoint,
                                   const CalibrateRunOptions& options, const ReportSink& print);

}  // namespace spikeflow::pipeline
