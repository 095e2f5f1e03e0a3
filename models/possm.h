// Possm: the POSSM-style model as LibTorch modules (internal to models/: includes torch).
// Paper: "Generalizable, real-time neural decoding with hybrid state-space models" (POSSM, 2025),
// reference implementation torch_brain/models/possm.py; tokenization and rotary cross-attention
// from POYO (Azabou et al., NeurIPS 2023, torch_brain/nn/rotary_attention.py).
//
//   tokens (unit, offset_s) ─ unit embedding ─ LN ─ K,V (per unit) ─ rotate by offset ─┐
//   learned latents ─ LN ─ Q ─ rotate by chunk end ────────────── masked softmax ──────┴─ attn
//   attn ─ counter-rotate by chunk end ─ out-proj ─ + latents ─ + MLP ─ [self-attn] ─ flatten
//   ─ recurrent backbone (GRU | S4D) across chunks ─ linear readout (standardized targets)
//
// Because a token's key and value depend only on its unit before rotation, K and V are computed
// once per unit (a table of num_units rows) and gathered per token; training and inference use
// the same code, and inference caches the tables (freeze_for_inference()).
//
// Batching: padded (B, C, T) tensors or packed (all tokens concatenated, segment softmax via
// scatter_reduce "amax" / index_add). An empty chunk attends to nothing: its attention output is
// exactly zero (never NaN).
#pragma once

#include <torch/torch.h>

#include <optional>
#include <vector>

#include "core/token_chunk.h"
#include "models/possm_config.h"

namespace spikeflow::models {

/// Sets torch's intra-op thread count and keeps OpenBLAS (Debian's LibTorch BLAS) to one thread:
/// its own pool would otherwise spin against torch's OpenMP threads (6x slower GRU on 2 cores).
void set_torch_threads(int threads);

struct PossmOptions {
  PossmOptions(int64_t num_units, int64_t output_dim)
      : num_units_(num_units), output_dim_(output_dim) {}
  TORCH_ARG(int64_t, num_units);
  TORCH_ARG(int64_t, output_dim);
  TORCH_ARG(double, width_s) = 0.05;  ///< chunk width; latents sit at the chunk end
  TORCH_ARG(PossmConfig, config);
  /// 0: a single-session model (no session embedding). N > 0: a learned embedding per session,
  /// added to every chunk's features before the backbone (the session conditions the recurrent
  /// state and the readout; the unit vocabulary spans all sessions).
  TORCH_ARG(int64_t, num_sessions) = 0;
};

/// Rotary embedding of a time in seconds: head_dim/4 frequency pairs with periods log-spaced in
/// [min_period_s, max_period_s]; the first head_dim/2 dims of a head are rotated, the rest pass.
struct RotaryTimeEmbeddingOptions {
  RotaryTimeEmbeddingOptions(int64_t head_dim) : head_dim_(head_dim) {}
  TORCH_ARG(int64_t, head_dim);
  TORCH_ARG(double, min_period_s) = 1e-4;
  TORCH_ARG(double, max_period_s) = 10.0;
};

class RotaryTimeEmbeddingImpl : public torch::nn::Module {
 public:
  explicit RotaryTimeEmbeddingImpl(RotaryTimeEmbeddingOptions options);
  /// t (...) seconds -> (cos, sin), each (..., head_dim/4).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& t) const;
  /// Rotates the first head_dim/2 dims of x (..., head_dim) by angles whose cos/sin broadcast
  /// to (..., head_dim/4). Pass -sin to counter-rotate.
  static torch::Tensor rotate(const torch::Tensor& x, const torch::Tensor& cos,
                              const torch::Tensor& sin);

  RotaryTimeEmbeddingOptions options;
  torch::Tensor omega;  ///< buffer (head_dim/4), rad/s
};
TORCH_MODULE(RotaryTimeEmbedding);

struct LatentCrossAttentionOptions {
  LatentCrossAttentionOptions(int64_t dim, int64_t num_heads, int64_t num_kv_heads)
      : dim_(dim), num_heads_(num_heads), num_kv_heads_(num_kv_heads) {}
  TORCH_ARG(int64_t, dim);
  TORCH_ARG(int64_t, num_heads);
  TORCH_ARG(int64_t, num_kv_heads);
  TORCH_ARG(int64_t, mlp_ratio) = 4;
};

/// Latents query a chunk's tokens (grouped-query attention with rotary time: query head h uses
/// K/V head h / (num_heads / num_kv_heads)), then residual +
/// out-projection and a pre-LN MLP.
class LatentCrossAttentionImpl : public torch::nn::Module {
 public:
  explicit LatentCrossAttentionImpl(LatentCrossAttentionOptions options);
  int64_t head_dim() const { return options.dim() / options.num_heads(); }
  /// Keys and values of every unit: unit embeddings (U, dim) -> (K, V), each (U, Hkv, hd).
  std::pair<torch::Tensor, torch::Tensor> kv_table(const torch::Tensor& unit_embeddings);
  /// Queries (L, H, hd), scaled by 1/sqrt(hd) and rotated by (cos, sin) (1, P).
  torch::Tensor queries(const torch::Tensor& latents, const torch::Tensor& cos,
                        const torch::Tensor& sin);
  /// The out-projection weight with the counter-rotation by the latent time (cos, sin) (1, P)
  /// folded in: to_out(counter_rotate(a)) = a · out_weightᵀ + to_out.bias, (dim, H*hd).
  torch::Tensor out_weight(const torch::Tensor& cos, const torch::Tensor& sin);
  /// attn (S, L, H, hd) -> counter-rotated + projected (out_weight), + latents, + MLP -> (S, L,
  /// dim).
  torch::Tensor finish(const torch::Tensor& attn, const torch::Tensor& latents,
                       const torch::Tensor& out_weight);
  LatentCrossAttentionOptions options;
  torch::nn::LayerNorm norm_q{nullptr}, norm_kv{nullptr}, norm_mlp{nullptr};
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr}, to_out{nullptr};
  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(LatentCrossAttention);

/// Pre-LN self-attention + MLP block over one chunk's latents (Perceiver-style processing).
class LatentSelfAttentionImpl : public torch::nn::Module {
 public:
  LatentSelfAttentionImpl(int64_t dim, int64_t num_heads);
  torch::Tensor forward(const torch::Tensor& x);  ///< (S, L, dim) -> (S, L, dim)

  int64_t dim_, num_heads_;
  torch::nn::LayerNorm norm_attn{nullptr}, norm_mlp{nullptr};
  torch::nn::Linear to_qkv{nullptr}, to_out{nullptr};
  torch::nn::Sequential mlp{nullptr};
};
TORCH_MODULE(LatentSelfAttention);

/// Diagonal state-space layer (S4D, Gu et al. 2022, "On the Parameterization and Initialization
/// of Diagonal State Space Models"): per channel, kStateSize complex modes, ZOH discretization,
/// S4D-Lin init (A = -1/2 + iπn), run as a recurrence so streaming and batch are the same scan.
class S4DImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kStateSize = 16;  ///< complex modes per channel
  S4DImpl(int64_t input_dim, int64_t channels);
  /// x (B, C, input_dim), state (2, B, channels, kStateSize) (real, imag) -> (y (B, C, channels),
  /// state).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& x,
                                                  const torch::Tensor& state);
  torch::Tensor initial_state(int64_t batch, const torch::TensorOptions& opts) const;

  int64_t channels_;
  torch::nn::Linear in_proj{nullptr};
  torch::Tensor log_dt, log_a_real, a_imag, c, d;
};
TORCH_MODULE(S4D);

struct PaddedBatch {
  torch::Tensor unit;        ///< (B, C, T) long
  torch::Tensor offset;      ///< (B, C, T) float, seconds
  torch::Tensor token_mask;  ///< (B, C, T) bool
  torch::Tensor chunk_mask;  ///< (B, C) bool
  torch::Tensor session;     ///< (B) long, the window's session; undefined for one-session models
};

struct PackedBatch {
  int64_t batch = 0, chunks = 0;
  torch::Tensor unit;        ///< (N) long
  torch::Tensor offset;      ///< (N) float, seconds
  torch::Tensor segment;     ///< (N) long, b * chunks + c
  torch::Tensor chunk_mask;  ///< (B, C) bool
  torch::Tensor session;     ///< (B) long, the window's session; undefined for one-session models
};

/// windows[b] holds up to C consecutive chunks (shorter windows are padded, chunk_mask false).
/// keep_units, when given, has one per-unit keep flag vector per window (unit dropout).
using Windows = std::vector<std::vector<const core::TokenChunk*>>;
PaddedBatch collate_padded(const Windows& windows,
                           const std::vector<std::vector<uint8_t>>* keep_units = nullptr);
PackedBatch collate_packed(const Windows& windows,
                           const std::vector<std::vector<uint8_t>>* keep_units = nullptr);

class PossmImpl : public torch::nn::Module {
 public:
  explicit PossmImpl(PossmOptions options);

  /// Chunk features (S, num_latents*dim) from packed tokens; segment in [0, num_segments).
  torch::Tensor encode_packed(const torch::Tensor& unit, const torch::Tensor& offset,
                              const torch::Tensor& segment, int64_t num_segments);
  /// Chunk features (S, num_latents*dim) from padded tokens (S, T), T >= 1.
  torch::Tensor encode_padded(const torch::Tensor& unit, const torch::Tensor& offset,
                              const torch::Tensor& mask);
  /// One chunk's features (1, num_latents*dim) from its n >= 0 tokens (the streaming path).
  torch::Tensor encode_one(const torch::Tensor& unit, const torch::Tensor& offset);

  /// Backbone over a sequence: features (B, C, F), state -> (readout (B, C, output_dim), state).
  /// session (B) long selects each sequence's session embedding (multi-session models only).
  std::pair<torch::Tensor, torch::Tensor> decode(const torch::Tensor& features,
                                                 const torch::Tensor& state,
                                                 const torch::Tensor& session = {});
  torch::Tensor initial_state(int64_t batch);

  /// Standardized predictions (B, C, output_dim) from zero state.
  torch::Tensor forward_packed(const PackedBatch& batch);
  torch::Tensor forward_padded(const PaddedBatch& batch);

  /// Caches the per-unit K/V tables and the rotated queries; call after the weights are final
  /// (inference only). Any training step afterwards must call clear_inference_cache().
  void freeze_for_inference();
  void clear_inference_cache() { cache_.reset(); }

  PossmOptions options;
  torch::nn::Embedding unit_emb{nullptr};
  torch::Tensor latents;  ///< (L, dim)
  RotaryTimeEmbedding rotary{nullptr};
  LatentCrossAttention cross{nullptr};
  torch::nn::ModuleList self_attn{nullptr};
  torch::nn::GRU gru{nullptr};
  S4D s4d{nullptr};
  torch::nn::Linear readout{nullptr};
  torch::Tensor session_emb;  ///< (num_sessions, num_latents*dim); undefined when single-session

 private:
  // Everything about the attention that depends on units and latents but not on token times.
  // With q rotated by the latent time and k rotated by the token time t, the score is
  //   q·rot(k_u, t) = Σ_p cos(ω_p t) A[u,p] + sin(ω_p t) B[u,p] + R[u]
  // (A = q1·k1 + q2·k2, B = q2·k1 - q1·k2 per pair, R = the unrotated dims), so a token's score
  // is a gather of 2P+1 numbers per head and a dot product with [cos, sin, 1](t); and
  //   rot(v_u, t) = v_u ⊙ [cos, cos, 1] + swap(v_u) ⊙ [-sin, sin, 0].
  struct Parts {
    torch::Tensor score;          ///< (U, L*H, 2P+1): [A | B | R] per unit and query head
    torch::Tensor v, v_swap;      ///< (U, Hkv, hd)
    torch::Tensor out_weight;     ///< out-projection with the counter-rotation folded in
    torch::Tensor omega2, phase;  ///< (2P+1): [ω, ω, 0] and [0, -π/2, 0]: phi = cos(t ω2 + phase)
    torch::Tensor omega_full, sign;  ///< (hd): [ω, ω, 0…] and [-1…, +1…, 0…]
  };
  Parts parts();
  /// Token scores (N, L, H) and rotated values (N, Hkv, hd).
  std::pair<torch::Tensor, torch::Tensor> token_terms(const Parts& p, const torch::Tensor& unit,
                                                      const torch::Tensor& offset);
  /// Σ_n e[n, l, h] · values[n, kv(h)] over the tokens of each segment -> (S, L, H, hd).
  torch::Tensor weighted_values(const torch::Tensor& e, const torch::Tensor& values);
  torch::Tensor finish(const torch::Tensor& attn, const Parts& p);  ///< (S,L,H,hd) -> (S, L*dim)
  torch::Tensor latent_time_;  ///< buffer (1): the latents' time = chunk width
  std::optional<Parts> cache_;
};
TORCH_MODULE(Possm);

/// The single-session model that decodes session `session` of a multi-session model exactly:
/// unit embedding rows [unit_begin, unit_begin + unit_count), and the session embedding folded
/// into the backbone's input bias (W (f + e) + b = W f + (b + W e)), so the streaming paths
/// (PossmDecoder, the fast path) serve it unchanged. Weights are copied; src is not changed.
Possm bake_session(Possm& src, int64_t session, int64_t unit_begin, int64_t unit_count);

}  // namespace spikeflow::models
