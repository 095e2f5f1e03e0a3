#include "models/ridge_decoder.h"

#include <algorithm>
#include <stdexcept>

namespace spikeflow::models {

RidgeDecoder::RidgeDecoder(std::vector<core::UnitKey> units, int output_dim,
                           std::vector<std::string> output_names, int64_t width_ns, int history,
                           std::vector<float> weights, std::vector<float> bias)
    : units_(std::move(units)),
      output_dim_(output_dim),
      output_names_(std::move(output_names)),
      width_ns_(width_ns),
      history_(history),
      weights_(std::move(weights)),
      bias_(std::move(bias)) {
  if (units_.empty() || output_dim_ <= 0 || history_ <= 0 || width_ns_ <= 0) {
    throw std::runtime_error("ridge: units, output_dim, history and width must be positive");
  }
  if (weights_.size() != units_.size() * static_cast<size_t>(history_ * output_dim_) ||
      bias_.size() != static_cast<size_t>(output_dim_)) {
    throw std::runtime_error(
        "ridge: weights have " + std::to_string(weights_.size()) + " values, expected " +
        std::to_string(units_.size() * static_cast<size_t>(history_ * output_dim_)));
  }
  ring_.assign(units_.size() * static_cast<size_t>(history_), 0.f);
}

void RidgeDecoder::reset() {
  std::fill(ring_.begin(), ring_.end(), 0.f);
  pos_ = 0;
}

void RidgeDecoder::step(const core::TokenChunk& chunk, std::span<float> out) {
  const size_t u_n = units_.size(), h = static_cast<size_t>(history_),
               d = static_cast<size_t>(output_dim_);
  if (out.size() < d) throw std::invalid_argument("RidgeDecoder::step: out too small");
  pos_ = (pos_ + 1) % h;
  float* newest = ring_.data() + pos_ * u_n;
  std::fill(newest, newest + u_n, 0.f);
  for (int32_t u : chunk.unit) {
    if (u < 0 || static_cast<size_t>(u) >= u_n) {
      throw std::out_of_range("RidgeDecoder: unit index " + std::to_string(u) + " outside [0, " +
                              std::to_string(u_n) + ")");
    }
    newest[u] += 1.f;
  }
  for (size_t j = 0; j < d; ++j) out[j] = bias_[j];
  for (size_t lag = 0; lag < h; ++lag) {
    const float* counts = ring_.data() + ((pos_ + h - lag) % h) * u_n;
    const float* w = weights_.data() + lag * u_n * d;
    for (size_t u = 0; u < u_n; ++u) {
      if (counts[u] == 0.f) continue;
      for (size_t j = 0; j < d; ++j) out[j] += counts[u] * w[u * d + j];
    }
  }
}

void RidgeDecoder::step_many(std::span<const core::TokenChunk* const> chunks,
                             std::span<float> out) {
  const size_t d = static_cast<size_t>(output_dim_);
  for (size_t i = 0; i < chunks.size(); ++i) step(*chunks[i], out.subspan(i * d, d));
}

std::string RidgeDecoder::describe() const {
  return "ridge k" + std::to_string(history_) + " u" + std::to_string(units_.size()) + " cpu";
}

void RidgeDecoder::save(const std::string& path) const {
  CheckpointFile ck;
  ck.kind = kKind;
  ck.kind_version = kKindVersion;
  ck.set_units("units", units_);
  ck.set_int("output_dim", output_dim_);
  ck.set_strings("output_names", output_names_);
  ck.set_int("width_ns", width_ns_);
  ck.set_int("history", history_);
  ck.set_floats("weights", weights_);
  ck.set_floats("bias", bias_);
  ck.write(path);
}

RidgeDecoder RidgeDecoder::from_checkpoint(const CheckpointFile& ck) {
  if (ck.kind_version != kKindVersion) {
    throw std::runtime_error("ridge format version " + std::to_string(ck.kind_version) +
                             " is not supported");
  }
  return RidgeDecoder(ck.get_units("units"), static_cast<int>(ck.get_int("output_dim")),
                      ck.get_strings("output_names"), ck.get_int("width_ns"),
                      static_cast<int>(ck.get_int("history")), ck.get_floats("weights"),
                      ck.get_floats("bias"));
}

}  // namespace spikeflow::models
