// Coefficient of determination per output dimension, as decoding papers report it:
// R² = 1 - SS_res / SS_tot with SS_tot about the mean of the true values in the evaluated set.
#pragma once

#include <cstddef>
#include <vector>

namespace spikeflow::core {

/// truth and pred are n x dim, row-major. Returns dim values. A dimension whose truth is constant
/// returns 0 (not NaN).
std::vector<double> r2_per_dim(const std::vector<float>& truth, const std::vector<float>& pred,
                               int dim);

/// Mean of r2_per_dim.
double mean_r2(const std::vector<float>& truth, const std::vector<float>& pred, int dim);

}  // namespace spikeflow::core
