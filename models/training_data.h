// Training data plumbing shared by train_possm, pretrain_possm and calibrate_possm: option and
// dataset checks (every error named), consecutive-chunk runs and the epoch's windows, target
// standardization, and the checkpoint metadata of a single- or multi-session run.
// Internal to models/ (includes torch through possm_decoder.h); implemented in training_data.cpp.
#pragma once

#include <cstddef>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "core/decoding_dataset.h"
#include "models/possm_decoder.h"
#include "models/trainer.h"

namespace spikeflow::models::detail {

/// Throws std::invalid_argument listing every bad field of o.
void check_options(const TrainOptions& o);

/// Options, both datasets, and that they describe the same units, outputs and chunk width.
void check_inputs(const core::DecodingDataset& train, const core::DecodingDataset& val,
                  const TrainOptions& opts);

/// Every session's data, and that they share output_dim and chunk width.
void check_sessions(const std::vector<TrainSession>& sessions, const TrainOptions& opts);

/// Runs of consecutive chunks [begin, end): seq increases by exactly 1 inside a run.
std::vector<std::pair<size_t, size_t>> consecutive_runs(const core::DecodingDataset& d);

/// A training window: chunks [begin, end) of one session.
struct Window {
  size_t session, begin, end;
};

/// Window starts of one session for one epoch: stride window/2 from a random phase, inside each
/// run; windows shorter than 2 chunks (or the whole run when it is shorter) are dropped.
void session_windows(const std::vector<std::pair<size_t, size_t>>& runs, size_t session, int window,
                     std::mt19937_64& rng, std::vector<Window>& out);

/// The checkpoint's metadata, with the target standardization from the training set.
PossmMeta training_meta(const core::DecodingDataset& train, const TrainOptions& opts);

/// Multi-session metadata: the sessions' units one after the other, per-session standardization.
PossmMeta multi_meta(const std::vector<TrainSession>& sessions, const PossmConfig& config);

/// A dataset's targets standardized with (mean, std): (chunks, output_dim).
torch::Tensor standardized_targets(const core::DecodingDataset& train,
                                   const std::vector<float>& mean, const std::vector<float>& sd);

}  // namespace spikeflow::models::detail
