// Reading a MATLAB TrialData file (a struct array, one element per trial, holding binned spike
// counts, a unit guide and hand velocity) into a Session with spike times, via libmatio
// (MAT v5 and v7.3). Used by load_session for .mat files and by tests / evaluation on the shared
// center-out recording. The field convention is TrialData's (github.com/mattperich/TrialData).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "replay/session.h"

namespace spikeflow::replay {

/// Names of the variable and fields to read; the defaults match center_out_data.mat.
struct MatReadOptions {
  std::string variable = "trial_data";     ///< the struct array, one element per trial
  std::string spikes_field = "M1_spikes";  ///< T x U spike counts per bin (non-negative ints)
  std::string unit_guide_field = "M1_unit_guide";  ///< U x 2 [electrode, sort code] per unit
  std::string velocity_field = "vel";              ///< T x D behaviour (cm/s), D = behavior_names
  std::string bin_size_field = "bin_size";  ///< scalar bin width, seconds (same in every trial)
  /// Optional scalar angle (rad); condition = round(angle / (2*pi / num_conditions)) mod
  /// num_conditions. Missing field (or empty name) -> condition 0.
  std::string condition_field = "target_direction";
  int num_conditions = 8;
  std::vector<std::string> behavior_names{"vx", "vy"};  ///< names of the velocity columns
  uint64_t expansion_seed = 1;  ///< seeds the uniform placement of spikes inside their bins
};

/// Reads the whole struct array. Trials are concatenated on one clock starting at 0: bin b of the
/// concatenation covers [b*bin_ns, (b+1)*bin_ns); trial k starts where trial k-1 ended. Each count
/// c becomes c spike times drawn uniformly inside its bin (std::mt19937_64(expansion_seed), so
/// runs repeat and re-binning at bin_ns gives the counts back exactly); behaviour sample b is at
/// the bin centre; one Trial per struct element. Units keyed (channel = electrode, unit = sort
/// code) from the first trial's guide (all trials must agree).
/// Throws std::runtime_error naming the file and listing every problem (missing variable or
/// field, wrong type, mismatched T between fields, unit count mismatch, NaN in velocity, ...).
/// Thread contract: none shared; safe to call concurrently on different files.
Session read_mat_session(const std::string& path, const MatReadOptions& opts = MatReadOptions{});

}  // namespace spikeflow::replay
