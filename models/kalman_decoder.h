// KalmanDecoder: steady-state Kalman filter with the targets as state (x_t = A x_{t-1} + w) and
// the chunk's unit counts as observation (z_t = H x_t + q), after Wu et al. (Neural Computation
// 2006). The gain K is the converged Riccati solution, so a step costs O(units × dims):
//   x̂_t = A x̂_{t-1} + K (z_t - μ_z - H A x̂_{t-1}),  output x̂_t + μ_x.
// Fitted by fit_kalman() (models/baselines.h); saved as checkpoint kind "kalman". Torch-free.
#pragma once

#include <string>
#include <vector>

#include "models/checkpoint_file.h"
#include "models/streaming_decoder.h"

namespace spikeflow::models {

class KalmanDecoder final : public StreamingDecoder {
 public:
  static constexpr char kKind[] = "kalman";
  static constexpr uint32_t kKindVersion = 1;

  /// a: d × d, gain: d × U, h: U × d, all row-major; mean_z: U; mean_x: d.
  KalmanDecoder(std::vector<core::UnitKey> units, int output_dim,
                std::vector<std::string> output_names, int64_t width_ns, std::vector<float> a,
                std::vector<float> gain, std::vector<float> h, std::vector<float> mean_z,
                std::vector<float> mean_x);

  void reset() override;
  void step(const core::TokenChunk& chunk, std::span<float> out) override;
  void step_many(std::span<const core::TokenChunk* const> chunks, std::span<float> out) override;
  int output_dim() const override { return output_dim_; }
  const std::vector<core::UnitKey>& units() const override { return units_; }
  int64_t chunk_width_ns() const override { return width_ns_; }
  std::string describe() const override;

  void save(const std::string& path) const;
  static KalmanDecoder from_checkpoint(const CheckpointFile& ck);

 private:
  std::vector<core::UnitKey> units_;
  int output_dim_;
  std::vector<std::string> output_names_;
  int64_t width_ns_;
  std::vector<float> a_, gain_, h_, mean_z_, mean_x_;
  std::vector<float> x_, prior_, innovation_;  // state (centred) and scratch
};

}  // namespace spikeflow::models
