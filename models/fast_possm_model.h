// The fast POSSM step's packed model (models/fast_possm_decoder.cpp): the weights of a
// FastPossmWeights in the aligned layouts the kernels read (models/fast_possm_kernels.h), the
// recurrent state and every work buffer of a step. Internal to the fast path (torch-free);
// packed once at load time (models/fast_possm_model.cpp), then only the step touches it.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "models/fast_possm_decoder.h"
#include "models/fast_possm_kernels.h"

namespace spikeflow::models::fast_possm {

constexpr int kS4dModes = 16;  // S4DImpl::kStateSize (models/possm.h)

/// One packed latent self-attention block (FastSelfAttentionWeights).
struct SelfAttention {
  LayerNorm norm_attn, norm_mlp;
  Linear to_qkv, to_out, mlp1, mlp2;
};

/// Everything one step reads and writes. FastPossmDecoder owns one, plus a second for the helper
/// thread of step_many (same weights, its own work buffers).
struct Model {
  // shapes
  int num_units = 0, num_latents = 0, heads = 0, kv_heads = 0, group = 0, head_dim = 0, pairs = 0,
      score_len = 0, lh = 0, dim = 0, hidden = 0, features = 0, output_dim = 0;
  bool gru = true;
  bool odd_step = false;  // alternates the order of the GRU's matrix-vector products (run_step)
  bool gh_ready = false;  // m.gh holds W_hh h + b_hh for the current h (prepare_next)
  // constants
  Buf omega, latents;
  float max_omega = 0.f;
  // Per unit, one 64-byte aligned row: [score (L*H, 2P+1) | value (Hkv, hd)], so that a token's
  // gather is a few adjacent cache lines (prefetched a few tokens ahead).
  Buf unit_rows;
  size_t row_stride = 0, value_offset = 0;
  Linear out, mlp1, mlp2;
  LayerNorm norm_mlp;
  std::vector<SelfAttention> self_attn;
  Linear gru_ih, gru_hh, s4d_in, readout;
  Buf s4d_er, s4d_ei, s4d_br, s4d_bi, s4d_cr, s4d_ci, s4d_d;  // (16, R): channel-contiguous
  Buf target_mean, target_std;
  // recurrent state: GRU h (R) or S4D (16, R) real and imaginary parts
  Buf h, s_re, s_im;
  // per-token work, capacity `capacity` tokens
  size_t capacity = 0;
  Buf cos_t, sin_t, sin_score;  // (N, P)
  Buf scores;                   // (L*H, capacity): token-contiguous
  // per-chunk work
  Buf rotated, num, den, attn, x, ln, mlp_hidden, tmp, qkv, sa_out, probs;
  Buf gi, gh, u, y, o;

  // step_many on two threads: each chunk's input projection (proj_stride floats) and the
  // generation at which it was written, in `batch_capacity` slots
  size_t batch_capacity = 0, proj_stride = 0;
  Buf batch_proj;
  std::unique_ptr<std::atomic<uint64_t>[]> ready;

  void reserve_batch(size_t n) {
    if (n <= batch_capacity) return;
    batch_capacity = std::max(n, batch_capacity * 2);
    proj_stride = (static_cast<size_t>(gru ? gru_ih.out_pad : s4d_in.out_pad) + 15) / 16 * 16;
    batch_proj.resize(batch_capacity * proj_stride);
    ready = std::make_unique<std::atomic<uint64_t>[]>(batch_capacity);  // zeros: no generation
  }

  void reserve_tokens(size_t n) {
    if (n <= capacity) return;
    capacity = std::max(n, capacity * 2);
    const size_t np = capacity * static_cast<size_t>(pairs);
    for (Buf* b : {&cos_t, &sin_t, &sin_score}) b->resize(np);
    scores.resize(capacity * static_cast<size_t>(lh));
  }
};

/// Throws std::invalid_argument listing every problem of w (the config, shapes of every array),
/// or nothing when FastPossmDecoder can run it.
void check_weights(const FastPossmWeights& w);

/// Packs w into m (which must be default-constructed) and allocates m's work buffers for
/// token_capacity tokens per chunk. w must have passed check_weights().
void pack_model(Model& m, const FastPossmWeights& w, size_t token_capacity);

}  // namespace spikeflow::models::fast_possm
