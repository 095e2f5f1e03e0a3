#include "models/kalman_decoder.h"

#include <algorithm>
#include <stdexcept>

namespace spikeflow::models {

KalmanDecoder::KalmanDecoder(std::vector<core::UnitKey> units, int output_dim,
                             std::vector<std::string> output_names, int64_t width_ns,
                             std::vector<float> a, std::vector<float> gain, std::vector<float> h,
                             std::vector<float> mean_z, std::vector<float> mean_x)
    : units_(std::move(units)),
      output_dim_(output_dim),
      output_names_(std::move(output_names)),
      width_ns_(width_ns),
      a_(std::move(a)),
      gain_(std::move(gain)),
      h_(std::move(h)),
      mean_z_(std::move(mean_z)),
      mean_x_(std::move(mean_x)) {
  const size_t u = units_.size(), d = static_cast<size_t>(output_dim_);
  if (u == 0 || output_dim_ <= 0 || width_ns_ <= 0) {
    throw std::runtime_error("kalman: units, output_dim and width must be positive");
  }
  if (a_.size() != d * d || gain_.size() != d * u || h_.size() != u * d || mean_z_.size() != u ||
      mean_x_.size() != d) {
    throw std::runtime_error("kalman: matrix sizes do not match " + std::to_string(u) +
                             " units × " + std::to_string(d) + " dims");
  }
  x_.assign(d, 0.f);
  prior_.assign(d, 0.f);
  innovation_.assign(u, 0.f);
}

void KalmanDecoder::reset() { std::fill(x_.begin(), x_.end(), 0.f); }

void KalmanDecoder::step(const core::TokenChunk& chunk, std::span<float> out) {
  const size_t u_n = units_.size(), d = static_cast<size_t>(output_dim_);
  if (out.size() < d) throw std::invalid_argument("KalmanDecoder::step: out too small");
  for (size_t i = 0; i < d; ++i) {
    float v = 0.f;
    for (size_t j = 0; j < d; ++j) v += a_[i * d + j] * x_[j];
    prior_[i] = v;
  }
  for (size_t u = 0; u < u_n; ++u) innovation_[u] = -mean_z_[u];
  for (int32_t u : chunk.unit) {
    if (u < 0 || static_cast<size_t>(u) >= u_n) {
      throw std::out_of_range("KalmanDecoder: unit index " + std::to_string(u) + " outside [0, " +
                              std::to_string(u_n) + ")");
    }
    innovation_[static_cast<size_t>(u)] += 1.f;
  }
  for (size_t u = 0; u < u_n; ++u) {
    float v = 0.f;
    for (size_t j = 0; j < d; ++j) v += h_[u * d + j] * prior_[j];
    innovation_[u] -= v;
  }
  for (size_t i = 0; i < d; ++i) {
    float v = prior_[i];
    for (size_t u = 0; u < u_n; ++u) v += gain_[i * u_n + u] * innovation_[u];
    x_[i] = v;
    out[i] = v + mean_x_[i];
  }
}

void KalmanDecoder::step_many(std::span<const core::TokenChunk* const> chunks,
                              std::span<float> out) {
  const size_t d = static_cast<size_t>(output_dim_);
  for (size_t i = 0; i < chunks.size(); ++i) step(*chunks[i], out.subspan(i * d, d));
}

std::string KalmanDecoder::describe() const {
  return "kalman u" + std::to_string(units_.size()) + " cpu";
}

void KalmanDecoder::save(const std::string& path) const {
  CheckpointFile ck;
  ck.kind = kKind;
  ck.kind_version = kKindVersion;
  ck.set_units("units", units_);
  ck.set_int("output_dim", output_dim_);
  ck.set_strings("output_names", output_names_);
  ck.set_int("width_ns", width_ns_);
  ck.set_floats("a", a_);
  ck.set_floats("gain", gain_);
  ck.set_floats("h", h_);
  ck.set_floats("mean_z", mean_z_);
  ck.set_floats("mean_x", mean_x_);
  ck.write(path);
}

KalmanDecoder KalmanDecoder::from_checkpoint(const CheckpointFile& ck) {
  if (ck.kind_version != kKindVersion) {
    throw std::runtime_error("kalman format version " + std::to_string(ck.kind_version) +
                             " is not supported");
  }
  return KalmanDecoder(ck.get_units("units"), static_cast<int>(ck.get_int("output_dim")),
                       ck.get_strings("output_names"), ck.get_int("width_ns"), ck.get_floats("a"),
                       ck.get_floats("gain"), ck.get_floats("h"), ck.get_floats("mean_z"),
                       ck.get_floats("mean_x"));
}

}  // namespace spikeflow::models
