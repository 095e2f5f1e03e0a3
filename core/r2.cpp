#include "core/r2.h"

#include <stdexcept>

namespace spikeflow::core {

std::vector<double> r2_per_dim(const std::vector<float>& truth, const std::vector<float>& pred,
                               int dim) {
  if (dim <= 0 || truth.size() != pred.size() || truth.size() % static_cast<size_t>(dim) != 0) {
    throw std::invalid_argument("r2: truth and prediction sizes disagree");
  }
  const size_t n = truth.size() / static_cast<size_t>(dim);
  std::vector<double> out(static_cast<size_t>(dim), 0.0);
  if (n == 0) return out;
  for (int d = 0; d < dim; ++d) {
    double mean = 0.0;
    for (size_t i = 0; i < n; ++i) mean += truth[i * dim + d];
    mean /= static_cast<double>(n);
    double ss_tot = 0.0, ss_res = 0.0;
    for (size_t i = 0; i < n; ++i) {
      const double t = truth[i * dim + d];
      const double e = t - pred[i * dim + d];
      ss_tot += (t - mean) * (t - mean);
      ss_res += e * e;
    }
    out[static_cast<size_t>(d)] = ss_tot > 0.0 ? 1.0 - ss_res / ss_tot : 0.0;
  }
  return out;
}

double mean_r2(const std::vector<float>& truth, const std::vector<float>& pred, int dim) {
  auto r = r2_per_dim(truth, pred, dim);
  double s = 0.0;
  for (double v : r) s += v;
  return r.empty() ? 0.0 : s / static_cast<double>(r.size());
}

}  // namespace spikeflow::core
