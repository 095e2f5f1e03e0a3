#include "models/baselines.h"

#include <cmath>
#include <stdexcept>

#include "core/r2.h"
#include "models/baseline_decoders.h"
#include "models/decode_dataset.h"
#include "models/dense_linalg.h"
#include "models/kalman_decoder.h"
#include "models/ridge_decoder.h"

namespace spikeflow::models {

using linalg::Matrix;

namespace {

void check_dataset(const core::DecodingDataset& d, const char* who) {
  if (d.chunks.empty())
    throw std::invalid_argument(std::string(who) + ": the training dataset has no chunks");
  if (d.units.empty())
    throw std::invalid_argument(std::string(who) + ": the training dataset has no units");
  if (d.output_dim <= 0 ||
      d.targets.size() != d.chunks.size() * static_cast<size_t>(d.output_dim)) {
    throw std::invalid_argument(std::string(who) + ": targets do not match chunks × output_dim");
  }
  for (const auto& ch : d.chunks) {
    for (int32_t u : ch.unit) {
      if (u < 0 || static_cast<size_t>(u) >= d.units.size()) {
        throw std::invalid_argument(std::string(who) + ": chunk " + std::to_string(ch.seq) +
                                    " has unit " + std::to_string(u) + " outside the unit map");
      }
    }
  }
}

/// Tokens per unit per chunk: n × U.
std::vector<float> counts(const core::DecodingDataset& d) {
  const size_t u_n = d.units.size();
  std::vector<float> c(d.chunks.size() * u_n, 0.f);
  for (size_t i = 0; i < d.chunks.size(); ++i) {
    for (int32_t u : d.chunks[i].unit) c[i * u_n + static_cast<size_t>(u)] += 1.f;
  }
  return c;
}

/// Sufficient statistics of the ridge regression over rows [begin, end).
struct Moments {
  double n = 0;
  std::vector<double> sx, sy;
  Matrix gxx, gxy;
};

Moments moments(const std::vector<float>& c, const core::DecodingDataset& d, int history,
                size_t begin, size_t end) {
  const size_t u_n = d.units.size(), p = u_n * static_cast<size_t>(history),
               dim = static_cast<size_t>(d.output_dim);
  Moments m;
  m.sx.assign(p, 0.0);
  m.sy.assign(dim, 0.0);
  m.gxx = Matrix(p, p);
  m.gxy = Matrix(p, dim);
  std::vector<size_t> nz;
  std::vector<double> val;
  for (size_t t = begin; t < end; ++t) {
    // Feature lag*U + u = count of unit u in chunk t - lag (zero before the first chunk, as after
    // reset()).
    nz.clear();
    val.clear();
    for (int lag = 0; lag < history; ++lag) {
      if (t < static_cast<size_t>(lag)) break;
      const float* row = c.data() + (t - static_cast<size_t>(lag)) * u_n;
      for (size_t u = 0; u < u_n; ++u) {
        if (row[u] != 0.f) {
          nz.push_back(static_cast<size_t>(lag) * u_n + u);
          val.push_back(row[u]);
        }
      }
    }
    const float* y = d.target(t);
    m.n += 1;
    for (size_t j = 0; j < dim; ++j) m.sy[j] += y[j];
    for (size_t a = 0; a < nz.size(); ++a) {
      m.sx[nz[a]] += val[a];
      for (size_t j = 0; j < dim; ++j) m.gxy(nz[a], j) += val[a] * y[j];
      for (size_t b = a; b < nz.size(); ++b) m.gxx(nz[a], nz[b]) += val[a] * val[b];
    }
  }
  for (size_t i = 0; i < p; ++i)
    for (size_t j = 0; j < i; ++j) m.gxx(i, j) = m.gxx(j, i);
  return m;
}

/// Ridge on standardized features with penalty lambda (relative to the unit feature variance);
/// returns raw-scale weights (p × d, row-major) and bias.
std::pair<std::vector<float>, std::vector<float>> solve_ridge(const Moments& m, double lambda) {
  const size_t p = m.sx.size(), dim = m.sy.size();
  std::vector<double> mx(p), sd(p), my(dim);
  for (size_t i = 0; i < p; ++i) mx[i] = m.sx[i] / m.n;
  for (size_t j = 0; j < dim; ++j) my[j] = m.sy[j] / m.n;
  for (size_t i = 0; i < p; ++i) {
    const double v = m.gxx(i, i) / m.n - mx[i] * mx[i];
    sd[i] = v > 1e-12 ? std::sqrt(v) : 1.0;
  }
  Matrix s(p, p), b(p, dim);
  for (size_t i = 0; i < p; ++i) {
    for (size_t j = 0; j < p; ++j) s(i, j) = (m.gxx(i, j) / m.n - mx[i] * mx[j]) / (sd[i] * sd[j]);
    s(i, i) += lambda;
    for (size_t j = 0; j < dim; ++j) b(i, j) = (m.gxy(i, j) / m.n - mx[i] * my[j]) / sd[i];
  }
  const Matrix w = linalg::spd_solve(std::move(s), std::move(b));
  std::vector<float> weights(p * dim), bias(dim);
  for (size_t j = 0; j < dim; ++j) {
    double bj = my[j];
    for (size_t i = 0; i < p; ++i) {
      const double wr = w(i, j) / sd[i];
      weights[i * dim + j] = static_cast<float>(wr);
      bj -= wr * mx[i];
    }
    bias[j] = static_cast<float>(bj);
  }
  return {weights, bias};
}

Moments subtract(const Moments& a, const Moments& b) {
  Moments m = a;
  m.n -= b.n;
  for (size_t i = 0; i < m.sx.size(); ++i) m.sx[i] -= b.sx[i];
  for (size_t i = 0; i < m.sy.size(); ++i) m.sy[i] -= b.sy[i];
  m.gxx = linalg::add(a.gxx, b.gxx, -1.0);
  m.gxy = linalg::add(a.gxy, b.gxy, -1.0);
  return m;
}

std::string where(const std::string& path) { return "checkpoint '" + path + "': "; }

}  // namespace

BaselineFit fit_ridge(const core::DecodingDataset& train, const RidgeOptions& options) {
  check_dataset(train, "fit_ridge");
  if (options.history_chunks < 1)
    throw std::invalid_argument("fit_ridge: history_chunks must be >= 1");
  if (!(options.lambda >= 0)) throw std::invalid_argument("fit_ridge: lambda must be >= 0");
  const auto c = counts(train);
  const size_t n = train.chunks.size();
  const Moments all = moments(c, train, options.history_chunks, 0, n);
  auto make = [&](std::vector<float> w, std::vector<float> b) {
    return std::make_unique<RidgeDecoder>(train.units, train.output_dim, train.output_names,
                                          train.width_ns, options.history_chunks, std::move(w),
                                          std::move(b));
  };
  BaselineFit fit;
  fit.lambda = options.lambda;
  const size_t split = n - n / 5;
  if (fit.lambda == 0 && split >= 10 && n - split >= 10) {
    // Choose λ by R² on the last 20 %, fitting on the first 80 % (moments of the tail subtracted).
    const Moments head = subtract(all, moments(c, train, options.history_chunks, split, n));
    double best = -1e300;
    for (double lambda : {1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0}) {
      auto [w, b] = solve_ridge(head, lambda);
      auto dec = make(std::move(w), std::move(b));
      const auto pred = decode_dataset(*dec, train);
      const std::vector<float> truth(
          train.targets.begin() + static_cast<std::ptrdiff_t>(split * train.output_dim),
          train.targets.end());
      const std::vector<float> p(
          pred.begin() + static_cast<std::ptrdiff_t>(split * train.output_dim), pred.end());
      const double r2 = core::mean_r2(truth, p, train.output_dim);
      if (r2 > best) {
        best = r2;
        fit.lambda = lambda;
      }
    }
  } else if (fit.lambda == 0) {
    fit.lambda = 1e-2;
  }
  auto [w, b] = solve_ridge(all, fit.lambda);
  fit.decoder = make(std::move(w), std::move(b));
  fit.train_r2 =
      core::mean_r2(train.targets, decode_dataset(*fit.decoder, train), train.output_dim);
  return fit;
}

BaselineFit fit_kalman(const core::DecodingDataset& train, const KalmanOptions& options) {
  check_dataset(train, "fit_kalman");
  if (!(options.regularization >= 0))
    throw std::invalid_argument("fit_kalman: regularization must be >= 0");
  if (train.chunks.size() < 3) throw std::invalid_argument("fit_kalman: need at least 3 chunks");
  const auto c = counts(train);
  const size_t n = train.chunks.size(), u_n = train.units.size(),
               d = static_cast<size_t>(train.output_dim);
  std::vector<double> mx(d, 0.0), mz(u_n, 0.0);
  for (size_t t = 0; t < n; ++t) {
    for (size_t j = 0; j < d; ++j) mx[j] += train.target(t)[j] / static_cast<double>(n);
    for (size_t u = 0; u < u_n; ++u) mz[u] += c[t * u_n + u] / static_cast<double>(n);
  }
  Matrix x(n, d), z(n, u_n);
  for (size_t t = 0; t < n; ++t) {
    for (size_t j = 0; j < d; ++j) x(t, j) = train.target(t)[j] - mx[j];
    for (size_t u = 0; u < u_n; ++u) z(t, u) = c[t * u_n + u] - mz[u];
  }
  auto ridge_eye = [&](Matrix m, double scale) {
    double tr = 0;
    for (size_t i = 0; i < m.rows; ++i) tr += m(i, i);
    const double eps =
        options.regularization * (tr > 0 ? tr / static_cast<double>(m.rows) : 1.0) + 1e-12 * scale;
    for (size_t i = 0; i < m.rows; ++i) m(i, i) += eps;
    return m;
  };
  // State model x_t = A x_{t-1} + w (consecutive chunks only).
  Matrix x1x1(d, d), x2x1(d, d);
  size_t pairs = 0;
  for (size_t t = 1; t < n; ++t) {
    if (train.chunks[t].seq != train.chunks[t - 1].seq + 1) continue;
    ++pairs;
    for (size_t i = 0; i < d; ++i)
      for (size_t j = 0; j < d; ++j) {
        x1x1(i, j) += x(t - 1, i) * x(t - 1, j);
        x2x1(i, j) += x(t, i) * x(t - 1, j);
      }
  }
  if (pairs < 2)
    throw std::invalid_argument("fit_kalman: need consecutive chunks to fit the state model");
  // A = X2 X1ᵀ (X1 X1ᵀ)⁻¹  ⇔  Aᵀ = (X1 X1ᵀ)⁻¹ (X2 X1ᵀ)ᵀ
  const Matrix a =
      linalg::transpose(linalg::spd_solve(ridge_eye(x1x1, 1), linalg::transpose(x2x1)));
  Matrix w(d, d);
  for (size_t t = 1; t < n; ++t) {
    if (train.chunks[t].seq != train.chunks[t - 1].seq + 1) continue;
    std::vector<double> e(d);
    for (size_t i = 0; i < d; ++i) {
      e[i] = x(t, i);
      for (size_t j = 0; j < d; ++j) e[i] -= a(i, j) * x(t - 1, j);
    }
    for (size_t i = 0; i < d; ++i)
      for (size_t j = 0; j < d; ++j) w(i, j) += e[i] * e[j] / static_cast<double>(pairs);
  }
  // Observation model z_t = H x_t + q.
  const Matrix xt = linalg::transpose(x);
  const Matrix xx = linalg::matmul(xt, x);                                      // d × d
  const Matrix xz = linalg::matmul(xt, z);                                      // d × U
  const Matrix h = linalg::transpose(linalg::spd_solve(ridge_eye(xx, 1), xz));  // U × d
  const Matrix resid = linalg::add(z, linalg::matmul(x, linalg::transpose(h)), -1.0);
  Matrix q = linalg::matmul(linalg::transpose(resid), resid);
  for (double& v : q.a) v /= static_cast<double>(n);
  const Matrix q_inv = linalg::spd_inverse(ridge_eye(q, 1));
  // Steady-state gain by iterating the Riccati recursion in information form.
  const Matrix ht_qinv = linalg::matmul(linalg::transpose(h), q_inv);  // d × U
  const Matrix info = linalg::matmul(ht_qinv, h);                      // d × d
  const Matrix wr = ridge_eye(w, 1);
  Matrix p = wr;
  Matrix k(d, u_n);
  for (int it = 0; it < 1000; ++it) {
    const Matrix prior =
        linalg::add(linalg::matmul(linalg::matmul(a, p), linalg::transpose(a)), wr);
    const Matrix post = linalg::spd_inverse(linalg::add(linalg::spd_inverse(prior), info));
    double change = 0;
    for (size_t i = 0; i < post.a.size(); ++i)
      change = std::max(change, std::abs(post.a[i] - p.a[i]));
    p = post;
    if (change < 1e-10) break;
  }
  k = linalg::matmul(p, ht_qinv);  // K = P Hᵀ Q⁻¹ (posterior covariance form)
  auto to_f = [](const Matrix& m) { return std::vector<float>(m.a.begin(), m.a.end()); };
  BaselineFit fit;
  fit.decoder = std::make_unique<KalmanDecoder>(
      train.units, train.output_dim, train.output_names, train.width_ns, to_f(a), to_f(k), to_f(h),
      std::vector<float>(mz.begin(), mz.end()), std::vector<float>(mx.begin(), mx.end()));
  fit.train_r2 =
      core::mean_r2(train.targets, decode_dataset(*fit.decoder, train), train.output_dim);
  return fit;
}

void save_baseline(const StreamingDecoder& decoder, const std::string& checkpoint_path) {
  if (const auto* r = dynamic_cast<const RidgeDecoder*>(&decoder)) return r->save(checkpoint_path);
  if (const auto* k = dynamic_cast<const KalmanDecoder*>(&decoder)) return k->save(checkpoint_path);
  throw std::invalid_argument("save_baseline: '" + decoder.describe() +
                              "' is not a baseline decoder");
}

bool is_baseline_kind(const std::string& kind) {
  return kind == RidgeDecoder::kKind || kind == KalmanDecoder::kKind;
}

std::unique_ptr<StreamingDecoder> load_baseline_decoder(const std::string& checkpoint_path,
                                                        const RuntimeOptions& options) {
  if (options.device != "cpu") {
    throw std::runtime_error(where(checkpoint_path) +
                             "the baseline decoders run on device 'cpu' only (got '" +
                             options.device + "')");
  }
  const CheckpointFile ck = CheckpointFile::read(checkpoint_path);
  try {
    if (ck.kind == RidgeDecoder::kKind)
      return std::make_unique<RidgeDecoder>(RidgeDecoder::from_checkpoint(ck));
    if (ck.kind == KalmanDecoder::kKind)
      return std::make_unique<KalmanDecoder>(KalmanDecoder::from_checkpoint(ck));
  } catch (const std::exception& e) {
    throw std::runtime_error(where(checkpoint_path) + "bad " + ck.kind +
                             " checkpoint: " + e.what());
  }
  throw std::runtime_error(where(checkpoint_path) + "kind '" + ck.kind + "' is not a baseline");
}

}  // namespace spikeflow::models
