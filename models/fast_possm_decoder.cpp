// The fast streaming step of the POSSM-style decoder: plain loops on preallocated, 64-byte aligned
// buffers, no torch. This file is compiled with -O3 -fopenmp-simd (models/CMakeLists.txt): the
// `omp simd reduction` pragmas let the compiler vectorize float sums without -ffast-math.
// The hot entry points (run_step and friends) are cloned for x86-64-v3 (AVX2 + FMA) and baseline
// x86-64; the dynamic loader picks the clone the CPU supports (GCC target_clones / ifunc), so the
// library stays portable. Every helper they call is always_inline (here and in
// models/fast_possm_kernels.h) so that it is compiled into each clone; the weights are packed at
// load time by models/fast_possm_model.cpp.
//
// Numerics follow the LibTorch model (models/possm.cpp) step by step; see the comments at the
// rotary angles for the one place where the LibTorch arithmetic is reproduced on purpose.
#include "models/fast_possm_decoder.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "models/fast_possm_kernels.h"
#include "models/fast_possm_model.h"

namespace spikeflow::models {
namespace fast_possm {
namespace {

/// A token's rotary features for one frequency from sin / cos of m = fl(t ω) and the score
/// phase correction d (see encode): cos, sin for the values; sin(m + d) to float accuracy for
/// the score's sine term.
SPIKEFLOW_AI void store_rotary(float sv, float cv, float d, float* ci, float* si, float* qi) {
  *ci = cv;
  *si = sv;
  *qi = sv * (1.f - 0.5f * d * d) + cv * d;
}

// float(π/2): LibTorch's phase for the sine terms of the scores (models/possm.cpp, Parts::phase).
constexpr float kHalfPiF = static_cast<float>(M_PI / 2);
constexpr float kHalfPiLoF = static_cast<float>(M_PI / 2 - static_cast<double>(kHalfPiF));

/// Attention of the latents over the chunk's n tokens -> m.attn (L, H, hd), then out-projection,
/// residual and MLP -> m.x (L, dim). Mirrors PossmImpl::encode_one / token_terms / finish.
/// HD is the head dim when it is one of the instantiated sizes (loops of a few vectors, unrolled,
/// no aliasing checks: ~5x faster per token than runtime-length loops), 0 for any other.
/// One function (~170 lines) on purpose: split into always_inline steps (token scores, softmax,
/// weighted values, finish), GCC reloads Model fields inside the token loops and spills more
/// (checked on the disassembly of run_step); the steps are marked by comments instead.
template <int HD>
SPIKEFLOW_AI void encode(Model& m, const int32_t* __restrict unit, const float* __restrict off,
                         size_t n) {
  const int hd = HD > 0 ? HD : m.head_dim;
  const int P = hd / 4, S = 2 * P + 1, LH = m.lh, G = m.group;
  const size_t cap = m.capacity;
  float* attn = m.attn.data();
  if (n == 0) {
    // An empty chunk attends to nothing: its attention output is exactly zero.
    std::memset(attn, 0, static_cast<size_t>(LH * hd) * sizeof(float));
  } else {
    // Per token: rotary sin/cos, then the scores Σ_p A_p cos + B_p sin' + R per (latent, head),
    // stored token-contiguous per (latent, head).
    //
    // LibTorch computes the score features as cos(fma(t, ω, phase)) with phase 0 (cos) and
    // -float(π/2) (sin), and the value rotation from fl(t ω): so the score's "sine" is cos(x'),
    // x' = fl(t ω - float(π/2)), which differs from sin(fl(t ω)) by up to ~2e-4 at the largest
    // ω. We reproduce it: cos(x') = sin(m + δ) with m = fl(t ω), δ = x' - m + π/2 (exact in
    // double), = s (1 - δ²/2) + c δ to float accuracy.
    const float* omega = m.omega.data();
    const float* rows = m.unit_rows.data();
    const size_t stride = m.row_stride;
    constexpr size_t kAhead = 8;  // tokens: covers an L3 miss at ~100 ns per token
    float* cs = m.cos_t.data();
    float* sn = m.sin_t.data();
    float* sq = m.sin_score.data();
    float* sc = m.scores.data();
    // The float path when every angle is within sincos_float's range (offsets are >= 0 and
    // within the chunk for tokenized chunks; anything else takes the double path).
    float max_off = 0.f, min_off = 0.f;
#pragma omp simd reduction(max : max_off) reduction(min : min_off)
    for (size_t i = 0; i < n; ++i) {
      max_off = std::max(max_off, off[i]);
      min_off = std::min(min_off, off[i]);
    }
    const bool float_angles = min_off >= 0.f && max_off * m.max_omega < kFloatAngleLimit;
    ScoreBlock score_terms;
    for (size_t i = 0; i < n; ++i) {
      float* ci = cs + i * P;
      float* si = sn + i * P;
      float* qi = sq + i * P;
      if (float_angles) {
        const float t = off[i];
#pragma omp simd
        for (int p = 0; p < P; ++p) {
          // mf = fl(t ω) and xq = fl(t ω - float(π/2)) (one rounding: fma), as in the double
          // path below; xq - mf and the sum with float(π/2) are exact (Sterbenz) for angles
          // past π, and within 1e-7 below.
          const float mf = t * omega[p];
          const float xq = std::fma(t, omega[p], -kHalfPiF);
          const float d = ((xq - mf) + kHalfPiF) + kHalfPiLoF;
          float sv, cv;
          sincos_float(mf, sv, cv);
          store_rotary(sv, cv, d, ci + p, si + p, qi + p);
        }
      } else {
        const double t = off[i];
#pragma omp simd
        for (int p = 0; p < P; ++p) {
          const double exact = t * static_cast<double>(omega[p]);  // exact: 24 x 24 bits
          const auto mf = static_cast<float>(exact);
          const auto xq = static_cast<float>(exact - static_cast<double>(kHalfPiF));
          const auto d =
              static_cast<float>((static_cast<double>(xq) - static_cast<double>(mf)) + M_PI / 2);
          float sv, cv;
          sincos_approx(mf, sv, cv);
          store_rotary(sv, cv, d, ci + p, si + p, qi + p);
        }
      }
      if (i + kAhead < n) {
        const float* next = rows + static_cast<size_t>(unit[i + kAhead]) * stride;
        for (size_t b = 0; b < stride; b += 16) __builtin_prefetch(next + b);
      }
      const float* row = rows + static_cast<size_t>(unit[i]) * stride;
      if constexpr (HD > 0 && HD % 32 == 0) {
        // P a multiple of 8: each (token, head) score's terms as one 8-lane vector, summed
        // across lanes 8 scores at a time (transpose_sum8) instead of one by one.
        for (int q = 0; q < LH; ++q) {
          const float* a = row + q * S;
          v8f v = {};
          for (int p = 0; p < P; p += 8)
            v += load8(a + p) * load8(ci + p) + load8(a + P + p) * load8(qi + p);
          score_terms.push(v, &sc[static_cast<size_t>(q) * cap + i], a[2 * P]);
        }
      } else {
        for (int q = 0; q < LH; ++q) {
          const float* a = row + q * S;
          float acc = 0.f;
#pragma omp simd reduction(+ : acc)
          for (int p = 0; p < P; ++p) acc += a[p] * ci[p] + a[P + p] * qi[p];
          sc[static_cast<size_t>(q) * cap + i] = acc + a[2 * P];
        }
      }
    }
    score_terms.flush();
    // Softmax numerators e = exp(score - max) per (latent, head), and their sums.
    float* den = m.den.data();
    for (int q = 0; q < LH; ++q) {
      float* e = sc + static_cast<size_t>(q) * cap;
      float mx = e[0];
#pragma omp simd reduction(max : mx)
      for (size_t i = 0; i < n; ++i) mx = std::max(mx, e[i]);
      float sum = 0.f;
#pragma omp simd reduction(+ : sum)
      for (size_t i = 0; i < n; ++i) {
        e[i] = exp_approx(e[i] - mx);
        sum += e[i];
      }
      den[q] = sum;
    }
    // Σ_i e_i · rot(v_unit(i), t_i) per (latent, head), one kv head's values per group of heads.
    float* num = m.num.data();
    std::memset(num, 0, static_cast<size_t>(LH * hd) * sizeof(float));
    const float* value = rows + m.value_offset;
    alignas(64) float rot_local[HD > 0 ? HD : 1];
    float* __restrict rot = HD > 0 ? rot_local : m.rotated.data();
    const int L = m.num_latents, H = m.heads, Hkv = m.kv_heads;
    for (size_t i = 0; i < n; ++i) {
      const float* ci = cs + i * P;
      const float* si = sn + i * P;
      for (int kv = 0; kv < Hkv; ++kv) {
        const float* v =
            value + static_cast<size_t>(unit[i]) * stride + static_cast<size_t>(kv * hd);
#pragma omp simd
        for (int p = 0; p < P; ++p) {
          rot[p] = v[p] * ci[p] - v[P + p] * si[p];
          rot[P + p] = v[P + p] * ci[p] + v[p] * si[p];
        }
#pragma omp simd
        for (int d = 2 * P; d < hd; ++d) rot[d] = v[d];
        for (int l = 0; l < L; ++l) {
          for (int g = 0; g < G; ++g) {
            const int q = l * H + kv * G + g;
            const float w = sc[static_cast<size_t>(q) * cap + i];
            float* __restrict acc = num + q * hd;
#pragma omp simd
            for (int d = 0; d < hd; ++d) acc[d] += w * rot[d];
          }
        }
      }
    }
    for (int q = 0; q < LH; ++q) {
      const float inv = 1.f / den[q];
#pragma omp simd
      for (int d = 0; d < hd; ++d) attn[q * hd + d] = num[q * hd + d] * inv;
    }
  }
  // finish: x = latents + out(attn) (counter-rotation folded into out), x += MLP(LN(x)).
  const int D = m.dim, HHD = m.heads * hd;
  float* x = m.x.data();
  float* tmp = m.tmp.data();
  for (int l = 0; l < m.num_latents; ++l) {
    float* xl = x + l * D;
    apply(m.out, attn + l * HHD, tmp);
    const float* lat = m.latents.data() + l * D;
#pragma omp simd
    for (int d = 0; d < D; ++d) xl[d] = lat[d] + tmp[d];
    layer_norm(m.norm_mlp, xl, m.ln.data());
    apply(m.mlp1, m.ln.data(), m.mlp_hidden.data());
    float* hid = m.mlp_hidden.data();
    const int hn = m.mlp1.out;
#pragma omp simd
    for (int j = 0; j < hn; ++j) hid[j] = gelu(hid[j]);
    apply(m.mlp2, hid, tmp);
#pragma omp simd
    for (int d = 0; d < D; ++d) xl[d] += tmp[d];
  }
}

/// LatentSelfAttention::forward over the L latents in m.x.
SPIKEFLOW_AI void self_attention(Model& m, const SelfAttention& sa) {
  const int L = m.num_latents, D = m.dim, H = m.heads, hd = D / H;
  float* x = m.x.data();
  float* qkv = m.qkv.data();  // (L, 3, H, hd)
  float* out = m.sa_out.data();
  float* pr = m.probs.data();
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  for (int l = 0; l < L; ++l) {
    layer_norm(sa.norm_attn, x + l * D, m.ln.data());
    apply(sa.to_qkv, m.ln.data(), qkv + l * 3 * D);
  }
  for (int l = 0; l < L; ++l) {
    for (int h = 0; h < H; ++h) {
      const float* q = qkv + l * 3 * D + h * hd;
      float mx = -INFINITY;
      for (int j = 0; j < L; ++j) {
        const float* k = qkv + j * 3 * D + D + h * hd;
        float s = 0.f;
#pragma omp simd reduction(+ : s)
        for (int d = 0; d < hd; ++d) s += q[d] * k[d];
        pr[j] = s * scale;
        mx = std::max(mx, pr[j]);
      }
      float sum = 0.f;
      for (int j = 0; j < L; ++j) {
        pr[j] = exp_approx(pr[j] - mx);
        sum += pr[j];
      }
      float* o = out + l * D + h * hd;
      for (int d = 0; d < hd; ++d) o[d] = 0.f;
      for (int j = 0; j < L; ++j) {
        const float w = pr[j] / sum;
        const float* v = qkv + j * 3 * D + 2 * D + h * hd;
#pragma omp simd
        for (int d = 0; d < hd; ++d) o[d] += w * v[d];
      }
    }
  }
  float* tmp = m.tmp.data();
  float* hid = m.mlp_hidden.data();
  for (int l = 0; l < L; ++l) {
    float* xl = x + l * D;
    apply(sa.to_out, out + l * D, tmp);
#pragma omp simd
    for (int d = 0; d < D; ++d) xl[d] += tmp[d];
    layer_norm(sa.norm_mlp, xl, m.ln.data());
    apply(sa.mlp1, m.ln.data(), hid);
    const int hn = sa.mlp1.out;
#pragma omp simd
    for (int j = 0; j < hn; ++j) hid[j] = gelu(hid[j]);
    apply(sa.mlp2, hid, tmp);
#pragma omp simd
    for (int d = 0; d < D; ++d) xl[d] += tmp[d];
  }
}

/// The chunk's latent features -> m.x (L, dim): cross-attention encode, then self-attention.
SPIKEFLOW_AI void features(Model& m, const int32_t* unit, const float* off, size_t n) {
  switch (m.head_dim) {
    case 8:
      encode<8>(m, unit, off, n);
      break;
    case 16:
      encode<16>(m, unit, off, n);
      break;
    case 32:
      encode<32>(m, unit, off, n);
      break;
    case 64:
      encode<64>(m, unit, off, n);
      break;
    default:
      encode<0>(m, unit, off, n);
      break;
  }
  for (const auto& sa : m.self_attn) self_attention(m, sa);
}

/// m.gh = W_hh h + b_hh for the current state (GRU), in the direction that suits the cache (see
/// run_step), unless it is already there.
SPIKEFLOW_AI void prepare_gh(Model& m) {
  if (!m.gru || m.gh_ready) return;
  apply(m.gru_hh, m.h.data(), m.gh.data(), /*backward=*/m.odd_step);
  m.odd_step = !m.odd_step;
  m.gh_ready = true;
}

/// The recurrent step from the input projection in (GRU: W_ih x + b_ih, 3R; S4D: in_proj x, R),
/// then readout and de-standardization -> out.
SPIKEFLOW_AI void recur(Model& m, const float* __restrict in, float* out) {
  const int R = m.hidden;
  float* hy;
  if (m.gru) {
    // torch gru_cell: r, z = σ(W_i x + b_i + W_h h + b_h), n = tanh(W_in x + b_in + r (W_hn h +
    // b_hn)), h' = (h - n) z + n.
    prepare_gh(m);
    const float* gi = in;
    const float* gh = m.gh.data();
    float* h = m.h.data();
#pragma omp simd
    for (int j = 0; j < R; ++j) {
      const float r = sigmoid_approx(gi[j] + gh[j]);
      const float z = sigmoid_approx(gi[R + j] + gh[R + j]);
      const float nn = tanh_approx(gi[2 * R + j] + r * gh[2 * R + j]);
      h[j] = (h[j] - nn) * z + nn;
    }
    m.gh_ready = false;  // the state moved on
    hy = h;
  } else {
    // S4DImpl::forward, one time step; state and coefficients are (16, R), channel-contiguous.
    const float* u = in;
    float* y = m.y.data();
#pragma omp simd
    for (int c = 0; c < R; ++c) y[c] = 0.f;
    for (int k = 0; k < kS4dModes; ++k) {
      const size_t o = static_cast<size_t>(k) * R;
      float* sr = m.s_re.data() + o;
      float* si = m.s_im.data() + o;
      const float* er = m.s4d_er.data() + o;
      const float* ei = m.s4d_ei.data() + o;
      const float* br = m.s4d_br.data() + o;
      const float* bi = m.s4d_bi.data() + o;
      const float* cr = m.s4d_cr.data() + o;
      const float* ci = m.s4d_ci.data() + o;
#pragma omp simd
      for (int c = 0; c < R; ++c) {
        const float nr = er[c] * sr[c] - ei[c] * si[c] + br[c] * u[c];
        const float ni = er[c] * si[c] + ei[c] * sr[c] + bi[c] * u[c];
        sr[c] = nr;
        si[c] = ni;
        y[c] += cr[c] * nr - ci[c] * ni;
      }
    }
    const float* d = m.s4d_d.data();
#pragma omp simd
    for (int c = 0; c < R; ++c) y[c] = gelu(2.f * y[c] + d[c] * u[c]);
    hy = y;
  }
  float* o = m.o.data();
  apply(m.readout, hy, o);
  for (int j = 0; j < m.output_dim; ++j) out[j] = o[j] * m.target_std[j] + m.target_mean[j];
}

// ThreadSanitizer instruments the ifunc resolvers that target_clones generates, and the loader
// runs them during relocation, before TSan's runtime is up: the process crashes at load. TSan
// builds (scripts/sanitize.sh tsan) therefore compile the default clone only.
#if defined(__SANITIZE_THREAD__)
#define SPIKEFLOW_CLONES
#else
#define SPIKEFLOW_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif

/// One chunk: encode, self-attention, backbone step, readout, de-standardization -> out.
///
/// Cache order. With the small config the weights a step reads (~1.2 MB, 0.8 MB of it W_hh) are a
/// little more than a 1 MB L2, and a loop over more than the cache in the same order every time
/// misses on everything under LRU-like replacement (3-4x slower: L3 bandwidth). W_hh h depends on
/// the previous state only, so (when prepare_next() has not done it already) every other step
/// runs it first and backwards: the sequence of weights becomes "encode, W_ih, W_hh forward |
/// W_hh backward, encode, W_ih | ...", and each step starts with what the previous one touched
/// last, missing only on the excess.
SPIKEFLOW_CLONES void run_step(Model& m, const int32_t* unit, const float* off, size_t n,
                               float* out) {
  if (m.odd_step) prepare_gh(m);  // backwards, before the encode
  features(m, unit, off, n);
  float* in = m.gru ? m.gi.data() : m.u.data();
  apply(m.gru ? m.gru_ih : m.s4d_in, m.x.data(), in);
  recur(m, in, out);
}

/// Prefetches n floats from p into L2 (one hint per 64-byte line).
SPIKEFLOW_AI void prefetch_l2(const float* p, size_t n) {
  for (size_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 0, 2);
}

/// prepare_next(): W_hh h for the next chunk, off its critical path; then the weights the next
/// step reads (W_ih, MLP, out-projection, unit tables; ~0.4 MB with the small config) are
/// fetched back into L2, which the 0.8 MB W_hh stream just evicted them from.
SPIKEFLOW_CLONES void run_prepare(Model& m) {
  if (!m.gru || m.gh_ready) return;
  prepare_gh(m);
  const auto panel = [](const Linear& l) {
    return static_cast<size_t>(l.out_pad) * static_cast<size_t>(l.in);
  };
  prefetch_l2(m.unit_rows.data(), m.unit_rows.size());
  for (const Linear* l : {&m.out, &m.mlp1, &m.mlp2, &m.gru_ih, &m.readout})
    prefetch_l2(l->panel.data(), panel(*l));
}

/// One chunk's features and input projection -> proj (step_many with threads: any thread, on
/// its own Model's work buffers; the state is not touched).
SPIKEFLOW_CLONES void run_features(Model& m, const core::TokenChunk& c, float* proj) {
  features(m, c.unit.data(), c.offset_s.data(), c.size());
  apply(m.gru ? m.gru_ih : m.s4d_in, m.x.data(), proj);
}

/// The recurrent step of one chunk from its input projection (step_many with threads: the
/// calling thread, in chunk order).
SPIKEFLOW_CLONES void run_recur(Model& m, const float* proj, float* out) { recur(m, proj, out); }

/// Throws like PossmDecoder::check_units, before any state changes.
void check_chunk(const Model& m, const core::TokenChunk& chunk) {
  if (chunk.unit.size() != chunk.offset_s.size()) {
    throw std::invalid_argument("FastPossmDecoder: chunk " + std::to_string(chunk.seq) + " has " +
                                std::to_string(chunk.unit.size()) + " units but " +
                                std::to_string(chunk.offset_s.size()) + " offsets");
  }
  const int32_t* unit = chunk.unit.data();
  const size_t n = chunk.size();
  bool bad = false;
  for (size_t i = 0; i < n; ++i)
    bad |= static_cast<uint32_t>(unit[i]) >= static_cast<uint32_t>(m.num_units);
  if (!bad) return;
  for (int32_t u : chunk.unit) {
    if (u < 0 || u >= m.num_units) {
      throw std::out_of_range("FastPossmDecoder: chunk " + std::to_string(chunk.seq) +
                              " has unit index " + std::to_string(u) + " outside [0, " +
                              std::to_string(m.num_units) + ")");
    }
  }
}

}  // namespace
}  // namespace fast_possm

using fast_possm::Buf;
using fast_possm::check_chunk;
using fast_possm::Model;
using fast_possm::run_features;
using fast_possm::run_prepare;
using fast_possm::run_recur;
using fast_possm::run_step;

struct FastPossmDecoder::Impl {
  Model m;
  // threads >= 2: a second copy of the model whose work buffers encode chunks for step_many
  // on a thread the caller lends (set_parallel_invoke), while this one runs the recurrence.
  std::unique_ptr<Model> helper;
  StreamingDecoder::ParallelInvoke invoke;  // the caller's threads (set_parallel_invoke)
  uint64_t generation = 0;                  // of step_many calls, for Model::ready
  int threads = 1;
  std::vector<core::UnitKey> units;
  int64_t width_ns = 0;
  std::string describe;
  // warm(): a stand-in chunk with as many tokens as the last step, where its output goes, and
  // the recurrent state it is stepped from and put back.
  size_t last_tokens = 0;
  core::TokenChunk warm_chunk;
  Buf warm_out, saved_h, saved_gh, saved_re, saved_im;
};

FastPossmDecoder::FastPossmDecoder(const FastPossmWeights& w, int threads)
    : impl_(std::make_unique<Impl>()) {
  fast_possm::check_weights(w);
  if (threads < 1) throw std::invalid_argument("FastPossmDecoder: threads must be >= 1");
  fast_possm::pack_model(impl_->m, w, kInitialTokenCapacity);
  impl_->threads = threads;
  if (threads >= 2) {
    impl_->helper = std::make_unique<Model>();
    fast_possm::pack_model(*impl_->helper, w, kInitialTokenCapacity);
    impl_->m.reserve_batch(kInitialBatchCapacity);
  }
  impl_->units = w.units;
  impl_->width_ns = w.width_ns;
  const PossmConfig& c = w.config;
  impl_->describe =
      "possm-fast d" + std::to_string(c.dim) + " " + c.backbone + std::to_string(c.rnn_hidden) +
      (c.num_latents > 1 ? " l" + std::to_string(c.num_latents) : std::string()) +
      (c.self_attn_layers > 0 ? " sa" + std::to_string(c.self_attn_layers) : std::string()) +
      " cpu t" + std::to_string(threads);
  reset();
}

FastPossmDecoder::~FastPossmDecoder() = default;

void FastPossmDecoder::reset() {
  Model& m = impl_->m;
  for (Buf* b : {&m.h, &m.s_re, &m.s_im}) std::memset(b->data(), 0, b->size() * sizeof(float));
  m.gh_ready = false;
}

void FastPossmDecoder::step(const core::TokenChunk& chunk, std::span<float> out) {
  Model& m = impl_->m;
  if (out.size() < static_cast<size_t>(m.output_dim))
    throw std::invalid_argument("FastPossmDecoder::step: out too small");
  check_chunk(m, chunk);
  const size_t n = chunk.size();
  m.reserve_tokens(n);
  run_step(m, chunk.unit.data(), chunk.offset_s.data(), n, out.data());
  impl_->last_tokens = n;
}

void FastPossmDecoder::step_many(std::span<const core::TokenChunk* const> chunks,
                                 std::span<float> out) {
  const auto d = static_cast<size_t>(impl_->m.output_dim);
  if (out.size() < chunks.size() * d)
    throw std::invalid_argument("FastPossmDecoder::step_many: out too small");
  Model& m = impl_->m;
  size_t most = 0;
  for (const auto* c : chunks) {
    check_chunk(m, *c);  // all or nothing, like LibTorch's
    most = std::max(most, c->size());
  }
  m.reserve_tokens(most);
  if (!impl_->helper || !impl_->invoke || chunks.size() < 2) {
    for (size_t i = 0; i < chunks.size(); ++i) {
      const core::TokenChunk& c = *chunks[i];
      run_step(m, c.unit.data(), c.offset_s.data(), c.size(), out.data() + i * d);
    }
    return;
  }
  m.reserve_batch(chunks.size());
  // Two threads: chunks are encoded (features + input projection: stateless) by whichever of
  // the helper loop and the recurrence loop claims them first, into per-chunk slots; the
  // recurrence loop runs the chunks in order as each slot becomes ready. The recurrence loop
  // only waits for a slot someone has claimed, so whether the caller runs the two loops at the
  // same time or one after the other, nothing waits on work nobody is doing.
  Model& h = *impl_->helper;
  h.reserve_tokens(most);
  const size_t n = chunks.size();
  const uint64_t gen = ++impl_->generation;
  std::atomic<uint64_t>* ready = m.ready.get();
  std::atomic<size_t> next{0};
  const size_t ps = m.proj_stride;
  const auto encode_one = [&](Model& model, size_t i) {
    run_features(model, *chunks[i], m.batch_proj.data() + i * ps);
    ready[i].store(gen, std::memory_order_release);
  };
  const auto helper_loop = [&] {
    for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) encode_one(h, i);
  };
  const auto recurrence_loop = [&] {
    for (size_t i = 0; i < n; ++i) {
      int spins = 0;
      while (ready[i].load(std::memory_order_acquire) != gen) {
        if (const size_t j = next.fetch_add(1); j < n) {
          encode_one(m, j);
        } else if (++spins > 64) {
          std::this_thread::yield();  // the helper loop is encoding chunk i right now
        }
      }
      run_recur(m, m.batch_proj.data() + i * ps, out.data() + i * d);
    }
  };
  impl_->invoke(helper_loop, recurrence_loop);
}

void FastPossmDecoder::set_parallel_invoke(ParallelInvoke invoke) {
  impl_->invoke = std::move(invoke);
}

void FastPossmDecoder::prepare_next() { run_prepare(impl_->m); }

/// Warming runs the stateless half of a step (features and input projection: the encode loops,
/// their work buffers, the unit rows, the weights and the code itself) on a stand-in chunk with as
/// many tokens as the last one, units spread over the table, into a scratch buffer; then reads the
/// recurrence's weights. The state (h, the prepared W_hh h) is not touched, so predictions are
/// unchanged. Reading the weights alone left the live step ~5x the hot loop's at 96 units: the
/// code, the branch predictors and the token buffers were cold too.
namespace {
void copy_buf(const Buf& from, Buf& to) {
  if (to.size() != from.size()) to.resize(from.size());
  std::memcpy(to.data(), from.data(), from.size() * sizeof(float));
}
}  // namespace

// A whole step and the next step's preparation on a stand-in chunk, from the real state, which is
// then put back bit for bit (with the GRU's prepared W_hh h and its alternating product order):
// the real step then finds every weight, table, work buffer and line of code it reads where the
// stand-in left them. Features and input projection alone left the step 2-3x the hot loop's
// time after a 50 ms gap; a whole step and prepare, ~1.2x (README "Cold-cache tail").
void FastPossmDecoder::warm() {
  Impl& im = *impl_;
  Model& m = im.m;
  const size_t n = std::max<size_t>(1, std::min(im.last_tokens, m.capacity));
  if (im.warm_chunk.size() != n) {
    im.warm_chunk.unit.resize(n);
    im.warm_chunk.offset_s.resize(n);
    const float width_s = static_cast<float>(im.width_ns) * 1e-9f;
    for (size_t i = 0; i < n; ++i) {
      im.warm_chunk.unit[i] = static_cast<int32_t>((i * 7919) % static_cast<size_t>(m.num_units));
      im.warm_chunk.offset_s[i] = width_s * static_cast<float>(i) / static_cast<float>(n);
    }
  }
  if (im.warm_out.size() < static_cast<size_t>(m.output_dim))
    im.warm_out.resize(static_cast<size_t>(m.output_dim));
  const bool gh_ready = m.gh_ready, odd_step = m.odd_step;
  copy_buf(m.h, im.saved_h);
  copy_buf(m.gh, im.saved_gh);
  copy_buf(m.s_re, im.saved_re);
  copy_buf(m.s_im, im.saved_im);
  m.reserve_tokens(n);
  run_step(m, im.warm_chunk.unit.data(), im.warm_chunk.offset_s.data(), n, im.warm_out.data());
  run_prepare(m);
  copy_buf(im.saved_h, m.h);
  copy_buf(im.saved_gh, m.gh);
  copy_buf(im.saved_re, m.s_re);
  copy_buf(im.saved_im, m.s_im);
  m.gh_ready = gh_ready;
  m.odd_step = odd_step;
}

int FastPossmDecoder::output_dim() const { return impl_->m.output_dim; }
const std::vector<core::UnitKey>& FastPossmDecoder::units() const { return impl_->units; }
int64_t FastPossmDecoder::chunk_width_ns() const { return impl_->width_ns; }
std::string FastPossmDecoder::describe() const { return impl_->describe; }

}  // namespace spikeflow::models
