// RidgeDecoder: y_t = b + Σ_{lag<k} W_lag · counts_{t-lag}, counts = tokens per unit per chunk.
// Fitted by fit_ridge() (models/baselines.h); saved as checkpoint kind "ridge". Torch-free.
#pragma once

#include <string>
#include <vector>

#include "models/checkpoint_file.h"
#include "models/streaming_decoder.h"

namespace spikeflow::models {

class RidgeDecoder final : public StreamingDecoder {
 public:
  static constexpr char kKind[] = "ridge";
  static constexpr uint32_t kKindVersion = 1;

  /// weights: (history × units) × output_dim, row-major, row = lag * units + unit.
  RidgeDecoder(std::vector<core::UnitKey> units, int output_dim,
               std::vector<std::string> output_names, int64_t width_ns, int history,
               std::vector<float> weights, std::vector<float> bias);

  void reset() override;
  void step(const core::TokenChunk& chunk, std::span<float> out) override;
  void step_many(std::span<const core::TokenChunk* const> chunks, std::span<float> out) override;
  int output_dim() const override { return output_dim_; }
  const std::vector<core::UnitKey>& units() const override { return units_; }
  int64_t chunk_width_ns() const override { return width_ns_; }
  std::string describe() const override;

  void save(const std::string& path) const;
  /// Throws std::runtime_error (without the path; the caller adds it) on bad metadata.
  static RidgeDecoder from_checkpoint(const CheckpointFile& ck);

 private:
  std::vector<core::UnitKey> units_;
  int output_dim_;
  std::vector<std::string> output_names_;
  int64_t width_ns_;
  int history_;
  std::vector<float> weights_, bias_;
  std::vector<float> ring_;  ///< history × units counts; slot pos_ is the newest chunk
  size_t pos_ = 0;
};

}  // namespace spikeflow::models
