// FastPossmDecoder: the POSSM-style decoder's streaming step in plain C++ (no torch on the hot
// path), for the live pipeline on the CPU. Same model and same results as the LibTorch path
// (models/possm_decoder.h; max abs difference ~1e-6 on the outputs), ~12x less time per chunk:
// a chunk is ~0.3 M multiply-adds, which LibTorch spreads over ~100 ops of 3-7 µs overhead each.
// What is left is mostly memory traffic: the small config's GRU reads ~1 MB of fp32 weights per
// chunk, about the size of a core's L2 (see run_step in the .cpp for the access order).
//
// Built at load time from the weights of a loaded LibTorch model (models/fast_possm_export.h,
// the only part that touches torch); load_decoder() picks it with RuntimeOptions::path.
// Torch-free header: stages/ and pipeline/ may include it.
//
// What is precomputed (POYO rotary cross-attention, Azabou et al. 2023; POSSM 2025):
//   - per unit and query head the score decomposition [A | B | R] (a token's score is
//     Σ_p A_p cos ω_p t + B_p sin ω_p t + R), and the per-unit values before rotation;
//   - the latent queries (rotated by the chunk end, scaled) are folded into [A | B | R];
//   - the out-projection with the counter-rotation folded in;
//   - S4D's discretized (ZOH) transition and input coefficients.
// Per chunk: sin/cos of the token angles, gather + dot products per token, masked softmax per
// (latent, head), weighted sum of rotated values, out-projection, MLP and LayerNorms, optional
// latent self-attention, GRU cell or S4D recurrence, readout, de-standardization. Every buffer is
// allocated at construction (aligned); a chunk with more tokens than any before grows the token
// buffers once (see kInitialTokenCapacity).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/token_chunk.h"
#include "core/unit_map.h"
#include "models/possm_config.h"
#include "models/streaming_decoder.h"

namespace spikeflow::models {

/// A dense layer y = W x + b, W row-major (out × in) as torch stores it; b empty = no bias.
struct FastLinearWeights {
  int in = 0, out = 0;
  std::vector<float> w, b;
};

/// LayerNorm over the last dim: (x - mean) / sqrt(var + eps) * w + b (biased variance).
struct FastLayerNormWeights {
  std::vector<float> w, b;
  float eps = 1e-5f;
};

/// One Perceiver-style self-attention block over the latents (models/possm.h,
/// LatentSelfAttention): y = x + out(MHA(LN(x))), y + mlp2(GELU(mlp1(LN(y)))).
struct FastSelfAttentionWeights {
  FastLayerNormWeights norm_attn, norm_mlp;
  FastLinearWeights to_qkv, to_out, mlp1, mlp2;
};

/// Everything the fast path needs, as plain arrays (filled by export_fast_possm_weights() in
/// models/fast_possm_export.h). Shapes use U units, L latents, H query heads, Hkv key/value heads,
/// hd = dim / H, P = hd / 4 rotary frequency pairs.
struct FastPossmWeights {
  PossmConfig config;
  std::vector<core::UnitKey> units;  ///< model unit i = units[i]
  int output_dim = 0;
  int64_t width_ns = 0;
  std::vector<float> target_mean, target_std;  ///< outputs are y * std + mean

  std::vector<float> omega;    ///< (P) rad/s
  std::vector<float> score;    ///< (U, L*H, 2P+1): [A | B | R] with the scaled, rotated queries
  std::vector<float> value;    ///< (U, Hkv, hd) values before the rotation by token time
  std::vector<float> latents;  ///< (L, dim)
  FastLinearWeights out;       ///< (dim, H*hd): to_out with the counter-rotation folded in
  FastLayerNormWeights norm_mlp;
  FastLinearWeights mlp1, mlp2;
  std::vector<FastSelfAttentionWeights> self_attn;
  // backbone "gru": torch gate order (r, z, n); w_ih (3R, L*dim), w_hh (3R, R)
  FastLinearWeights gru_ih, gru_hh;
  // backbone "s4d": u = in_proj x; per channel and mode s' = e s + b u (complex), y = GELU(2 Re(c
  // s')
  // + d u); each (R, 16) except d (R)
  FastLinearWeights s4d_in;
  std::vector<float> s4d_er, s4d_ei, s4d_br, s4d_bi, s4d_cr, s4d_ci, s4d_d;
  FastLinearWeights readout;  ///< (output_dim, R)
};

class FastPossmDecoder final : public StreamingDecoder {
 public:
  /// Token buffers are allocated for this many tokens per chunk up front; a larger chunk grows
  /// them once (one allocation, then allocation-free again).
  static constexpr size_t kInitialTokenCapacity = 4096;
  /// With threads >= 2, step_many's per-chunk slots are allocated for this many chunks up front
  /// (grown likewise).
  static constexpr size_t kInitialBatchCapacity = 64;

  /// Validates the shapes (std::invalid_argument listing every problem) and packs the weights
  /// into the aligned layouts the kernels use. The weights are copied; w may be discarded.
  /// threads >= 2 (with set_parallel_invoke) lets step_many() encode chunks on a second thread
  /// lent by the caller while the calling thread runs the recurrence: replay's throughput.
  /// step() is single-threaded whatever the setting.
  explicit FastPossmDecoder(const FastPossmWeights& w, int threads = 1);
  ~FastPossmDecoder() override;
  FastPossmDecoder(const FastPossmDecoder&) = delete;
  FastPossmDecoder& operator=(const FastPossmDecoder&) = delete;

  void reset() override;
  /// One chunk, single-threaded, no torch, no allocation (see kInitialTokenCapacity). Unit
  /// indices outside [0, units().size()) or unit/offset arrays of different lengths throw (like
  /// the LibTorch path), before the state changes.
  void step(const core::TokenChunk& chunk, std::span<float> out) override;
  /// Same results as repeated step(), bit for bit. One thread: repeated step(). With
  /// threads >= 2 the features and input projections of later chunks are computed on a second
  /// thread while this one runs the recurrence (replay ~1.4x faster).
  void step_many(std::span<const core::TokenChunk* const> chunks, std::span<float> out) override;
  /// Computes the GRU's W_hh h + b_hh for the next chunk now (~60 % of a step at GRU 256), so
  /// that the next step() does only the chunk-dependent work. Results are unchanged.
  void prepare_next() override;
  /// A whole step and prepare_next() on a stand-in chunk (as many tokens as the last step), from
  /// a copy of the state that is then put back: the next step finds everything it reads in the
  /// cache. About one step plus one prepare_next() of time. Changes nothing, bit for bit.
  void warm() override;
  void set_parallel_invoke(ParallelInvoke invoke) override;
  int output_dim() const override;
  const std::vector<core::UnitKey>& units() const override;
  int64_t chunk_width_ns() const override;
  std::string describe() const override;  ///< "possm-fast d64 gru256 cpu t1" (t = threads)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spikeflow::models
