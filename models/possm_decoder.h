// PossmDecoder: the LibTorch POSSM model behind the torch-free StreamingDecoder interface, plus
// the POSSM checkpoint (kind "possm" in a CheckpointFile). Internal to models/ (includes torch):
// the pipeline gets one through load_decoder() (models/load_decoder.h).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "models/possm.h"
#include "models/streaming_decoder.h"

namespace spikeflow::models {

/// One session of a multi-session model: its slice of the unit vocabulary and its own target
/// standardization (behaviour scales differ between sessions).
struct PossmSession {
  std::string name;
  int64_t unit_begin = 0, unit_count = 0;  ///< rows of the unit embedding (PossmMeta::units)
  std::vector<float> target_mean, target_std;
};

/// Everything about a POSSM model except its weights.
struct PossmMeta {
  PossmConfig config;
  std::vector<core::UnitKey> units;  ///< model unit i = units[i]
  int output_dim = 2;
  std::vector<std::string> output_names;
  int64_t width_ns = 50'000'000;
  std::vector<float> target_mean;  ///< per output dim; outputs are y * std + mean
  std::vector<float> target_std;
  /// Multi-session models only (empty: a single-session model, format version 1): units then
  /// is the vocabulary of all sessions, each session a contiguous slice; target_mean/std are
  /// those of default_session, the session a streaming decoder serves.
  std::vector<PossmSession> sessions;
  int default_session = 0;
  /// Free text kept in the checkpoint: how it was made (pretraining corpus, calibration source,
  /// chosen hyper-parameters and why).
  std::string provenance;
};

inline constexpr char kPossmKind[] = "possm";
inline constexpr uint32_t kPossmKindVersion = 1;       ///< single-session
inline constexpr uint32_t kPossmMultiKindVersion = 2;  ///< multi-session (session embedding)

/// The single-session view of session s of a multi-session model (bake_session() + its meta).
std::pair<Possm, PossmMeta> session_view(Possm& model, const PossmMeta& meta, int s);
/// Reads a checkpoint of either version as stored (a multi-session model stays multi-session).
std::pair<Possm, PossmMeta> load_possm_checkpoint_full(const std::string& path);

/// A model shaped by meta, freshly initialised (on the CPU).
Possm make_possm(const PossmMeta& meta);
/// Writes meta + model weights as one checkpoint file (tmp + rename).
void save_possm_checkpoint(const std::string& path, Possm& model, const PossmMeta& meta);
/// Reads a POSSM checkpoint onto the CPU; a multi-session one as the single-session view of its
/// default session (what every streaming decoder serves). Throws std::runtime_error naming path and
/// the problem (missing, truncated, corrupt, wrong kind or version, bad metadata, missing or
/// mis-shaped tensor).
std::pair<Possm, PossmMeta> load_possm_checkpoint(const std::string& path);

/// Checks device/threads and returns the torch device. "cuda" without CUDA is a runtime_error.
torch::Device resolve_device(const RuntimeOptions& runtime);

class PossmDecoder final : public StreamingDecoder {
 public:
  /// Takes the model (shared: the trainer passes its own for validation), puts it in eval mode on
  /// the runtime device, caches the inference tables and sets torch's intra-op thread count.
  /// The model must not be trained while this decoder is used.
  PossmDecoder(Possm model, PossmMeta meta, const RuntimeOptions& runtime);

  void reset() override;
  void step(const core::TokenChunk& chunk, std::span<float> out) override;
  void step_many(std::span<const core::TokenChunk* const> chunks, std::span<float> out) override;
  int output_dim() const override { return meta_.output_dim; }
  const std::vector<core::UnitKey>& units() const override { return meta_.units; }
  int64_t chunk_width_ns() const override { return meta_.width_ns; }
  std::string describe() const override { return describe_; }

  const PossmMeta& meta() const { return meta_; }

 private:
  void check_units(const core::TokenChunk& chunk) const;
  void write_output(const torch::Tensor& y,
                    std::span<float> out);  ///< y (n, output_dim) standardized

  Possm model_;
  PossmMeta meta_;
  torch::Device device_;
  torch::Tensor state_;
  std::string describe_;
  std::vector<int64_t> unit_buf_, seg_buf_;  // step_many staging, reused
  std::vector<float> off_buf_;
};

}  // namespace spikeflow::models
