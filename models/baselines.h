// Baseline decoders, fitted in closed form on a DecodingDataset and run behind the same
// StreamingDecoder interface (torch-free): ridge regression on a causal history of binned counts,
// and a steady-state Kalman filter (Wu et al., "Bayesian population decoding of motor cortical
// activity using a Kalman filter", Neural Computation 2006). Both count each unit's tokens per
// chunk; both save into the same checkpoint container as POSSM (kinds "ridge" / "kalman"), so
// load_decoder() dispatches on the kind. CPU only.
// Fitting cost grows with (units × history)³: meant for tens to a few hundred units.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/decoding_dataset.h"
#include "models/streaming_decoder.h"

namespace spikeflow::models {

struct RidgeOptions {
  int history_chunks = 5;  ///< k: features are the counts of the current and k-1 previous chunks
  /// L2 penalty on standardized features; 0 = choose from a log grid by R² on the last 20 % of
  /// the training set, then refit on all of it.
  double lambda = 0;
};

struct KalmanOptions {
  int lag_chunks = 2;            ///< observation z_t is paired with the state lag_chunks later
                                 ///< (activity leads movement); the filter runs that many chunks
                                 ///< behind and extrapolates with A^lag
  double regularization = 1e-3;  ///< added to the diagonals of the fitted covariances
};

struct BaselineFit {
  std::unique_ptr<StreamingDecoder> decoder;
  double train_r2 = 0;  ///< mean R² of a streaming decode of the training set
  double lambda = 0;    ///< ridge: the penalty used
};

/// Fits a ridge decoder. Throws std::invalid_argument on bad options or an empty dataset.
BaselineFit fit_ridge(const core::DecodingDataset& train, const RidgeOptions& options = {});
/// Fits a Kalman-filter decoder (state = the targets, observation = the chunk's unit counts).
BaselineFit fit_kalman(const core::DecodingDataset& train, const KalmanOptions& options = {});

/// Saves a decoder returned by fit_ridge / fit_kalman (or loaded from such a checkpoint).
/// Throws std::invalid_argument for other decoders, std::runtime_error on I/O errors.
void save_baseline(const StreamingDecoder& decoder, const std::string& checkpoint_path);

}  // namespace spikeflow::models
