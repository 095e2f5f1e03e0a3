// The fast streaming step of the POSSM-style decoder: plain loops on preallocated, 64-byte aligned
// buffers, no torch. This file is compiled with -O3 -fopenmp-simd (models/CMakeLists.txt): the
// `omp simd reduction` pragmas let the compiler vectorize float sums without -ffast-math.
// The hot entry point (run_step) is cloned for x86-64-v3 (AVX2 + FMA) and baseline x86-64;
// the dynamic loader picks the clone the CPU supports (GCC target_clones / ifunc), so the library
// stays portable. Every helper it calls is always_inline so that it is compiled into each clone.
//
// Numerics follow the LibTorch model (models/possm.cpp) step by step; see the comments at the
// rotary angles for the one place where the LibTorch arithmetic is reproduced on purpose.
#include "models/fast_possm_decoder.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>
#include <thread>

namespace spikeflow::models {

// Defined in models/possm.cpp (declared in the torch header models/possm.h); torch-free itself.
void validate_possm_config(const PossmConfig& config);

namespace {

#define SPIKEFLOW_AI inline __attribute__((always_inline))
// ThreadSanitizer instruments the ifunc resolvers that target_clones generates, and the loader
// runs them during relocation, before TSan's runtime is up: the process crashes at load. TSan
// builds (scripts/sanitize.sh tsan) therefore compile the default clone only.
#if defined(__SANITIZE_THREAD__)
#define SPIKEFLOW_CLONES
#else
#define SPIKEFLOW_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#endif

constexpr int kS4dModes = 16;  // S4DImpl::kStateSize (models/possm.h)

// ---------------------------------------------------------------- aligned buffers

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

/// Zero-initialized float array, 64-byte aligned, with room for whole 16-float vectors past the
/// logical size (kernels store full vectors).
class Buf {
 public:
  Buf() = default;
  explicit Buf(size_t n) { resize(n); }
  void resize(size_t n) {
    const size_t cap = std::max<size_t>((n + 15) / 16 * 16, 16);
    auto* p = static_cast<float*>(std::aligned_alloc(64, cap * sizeof(float)));
    if (p == nullptr) throw std::bad_alloc();
    std::memset(p, 0, cap * sizeof(float));
    data_.reset(p);
    size_ = n;
  }
  void assign(const std::vector<float>& v) {
    resize(v.size());
    std::copy(v.begin(), v.end(), data_.get());
  }
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  float& operator[](size_t i) { return data_[i]; }
  float operator[](size_t i) const { return data_[i]; }
  size_t size() const { return size_; }

 private:
  std::unique_ptr<float[], FreeDeleter> data_;
  size_t size_ = 0;
};

// ---------------------------------------------------------------- dense layers

typedef float v8f __attribute__((vector_size(32)));

constexpr int kPanelRows = 64;  // 8 accumulators of 8 floats: enough independent FMA chains

int round8(int n) { return (n + 7) / 8 * 8; }

/// y = W x + b with W packed in panels of up to 64 rows: panel r0 holds W[r0 .. r0+width) as
/// (in, width), so that the kernel streams W once, broadcasting x[j], with no horizontal sums.
struct Linear {
  int in = 0, out = 0, out_pad = 0;
  Buf panel, bias;
};

Linear pack_linear(const FastLinearWeights& w) {
  Linear l;
  l.in = w.in;
  l.out = w.out;
  l.out_pad = round8(w.out);
  l.panel.resize(static_cast<size_t>(l.out_pad) * static_cast<size_t>(l.in));
  l.bias.resize(static_cast<size_t>(l.out_pad));
  for (int r0 = 0; r0 < l.out_pad; r0 += kPanelRows) {
    const int width = std::min(kPanelRows, l.out_pad - r0);
    float* dst = l.panel.data() + static_cast<size_t>(r0) * static_cast<size_t>(l.in);
    for (int j = 0; j < l.in; ++j) {
      for (int r = 0; r < width; ++r) {
        const int row = r0 + r;
        dst[static_cast<size_t>(j) * static_cast<size_t>(width) + static_cast<size_t>(r)] =
            row < w.out
                ? w.w[static_cast<size_t>(row) * static_cast<size_t>(w.in) + static_cast<size_t>(j)]
                : 0.f;
      }
    }
  }
  for (int r = 0; r < w.out && !w.b.empty(); ++r)
    l.bias[static_cast<size_t>(r)] = w.b[static_cast<size_t>(r)];
  return l;
}

template <int NA>
SPIKEFLOW_AI void panel_gemv(const float* __restrict w, const float* __restrict x, int k,
                             const float* __restrict b, float* __restrict y) {
  v8f acc[NA];
  for (int a = 0; a < NA; ++a) std::memcpy(&acc[a], b + 8 * a, sizeof(v8f));
  for (int j = 0; j < k; ++j) {
    const float xj = x[j];
    const float* wj = w + static_cast<size_t>(j) * (8 * NA);
    for (int a = 0; a < NA; ++a) {
      v8f wv;
      std::memcpy(&wv, wj + 8 * a, sizeof(v8f));
      acc[a] += wv * xj;
    }
  }
  for (int a = 0; a < NA; ++a) std::memcpy(y + 8 * a, &acc[a], sizeof(v8f));
}

/// The rows of the last, partial panel (fewer than 64 rows), if any.
SPIKEFLOW_AI void tail_gemv(const Linear& l, int r0, const float* __restrict x,
                            float* __restrict y) {
  const float* wt = l.panel.data() + static_cast<size_t>(r0) * static_cast<size_t>(l.in);
  const float* b = l.bias.data() + r0;
  switch ((l.out_pad - r0) / 8) {
    case 1:
      panel_gemv<1>(wt, x, l.in, b, y + r0);
      break;
    case 2:
      panel_gemv<2>(wt, x, l.in, b, y + r0);
      break;
    case 3:
      panel_gemv<3>(wt, x, l.in, b, y + r0);
      break;
    case 4:
      panel_gemv<4>(wt, x, l.in, b, y + r0);
      break;
    case 5:
      panel_gemv<5>(wt, x, l.in, b, y + r0);
      break;
    case 6:
      panel_gemv<6>(wt, x, l.in, b, y + r0);
      break;
    case 7:
      panel_gemv<7>(wt, x, l.in, b, y + r0);
      break;
    default:
      break;
  }
}

/// y[0 .. out_pad) = W x + b (rows past out are 0). backward visits the panels last to first:
/// same results (each row's sum has one order), but see run_step for why the order matters.
SPIKEFLOW_AI void apply(const Linear& l, const float* __restrict x, float* __restrict y,
                        bool backward = false) {
  const float* w = l.panel.data();
  const float* b = l.bias.data();
  const auto in = static_cast<size_t>(l.in);
  const int full = l.out_pad / kPanelRows * kPanelRows;
  if (backward) tail_gemv(l, full, x, y);
  for (int i = 0; i < full; i += kPanelRows) {
    const int r0 = backward ? full - kPanelRows - i : i;
    panel_gemv<8>(w + static_cast<size_t>(r0) * in, x, l.in, b + r0, y + r0);
  }
  if (!backward) tail_gemv(l, full, x, y);
}

struct LayerNorm {
  Buf w, b;
  float eps = 1e-5f;
  int n = 0;
};

LayerNorm pack_ln(const FastLayerNormWeights& w) {
  LayerNorm l;
  l.w.assign(w.w);
  l.b.assign(w.b);
  l.eps = w.eps;
  l.n = static_cast<int>(w.w.size());
  return l;
}

SPIKEFLOW_AI void layer_norm(const LayerNorm& l, const float* __restrict x, float* __restrict y) {
  const int n = l.n;
  float sum = 0.f;
#pragma omp simd reduction(+ : sum)
  for (int i = 0; i < n; ++i) sum += x[i];
  const float mean = sum / static_cast<float>(n);
  float sq = 0.f;
#pragma omp simd reduction(+ : sq)
  for (int i = 0; i < n; ++i) sq += (x[i] - mean) * (x[i] - mean);
  const float inv = 1.f / std::sqrt(sq / static_cast<float>(n) + l.eps);
  const float* w = l.w.data();
  const float* b = l.b.data();
#pragma omp simd
  for (int i = 0; i < n; ++i) y[i] = (x[i] - mean) * inv * w[i] + b[i];
}

// ---------------------------------------------------------------- elementwise math
// Branch-free so that loops over them vectorize; accuracy ~1e-7 (well inside the 1e-5 agreement
// with LibTorch that the tests ask for).

/// e^x, x clamped to [-87, 88]: 2^k · p(r), |r| <= ln2/2, degree-7 Taylor (rel. error < 1e-8
/// before float rounding).
SPIKEFLOW_AI float exp_approx(float x) {
  x = x < -87.f ? -87.f : x;
  x = x > 88.f ? 88.f : x;
  constexpr float kMagic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  const float kf = x * 1.44269504088896341f + kMagic;
  const float k = kf - kMagic;
  const int32_t ki = std::bit_cast<int32_t>(kf) - 0x4B400000;
  const float r = (x - k * 0.693145751953125f) - k * 1.42860682030941723e-6f;
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  return p * std::bit_cast<float>(static_cast<uint32_t>(ki + 127) << 23);
}

SPIKEFLOW_AI float sigmoid_approx(float x) { return 1.f / (1.f + exp_approx(-x)); }

SPIKEFLOW_AI float tanh_approx(float x) { return 2.f / (1.f + exp_approx(-2.f * x)) - 1.f; }

/// Exact (erf) GELU as torch::nn::GELU() computes it; erf by Abramowitz & Stegun 7.1.26
/// (|error| <= 1.5e-7).
SPIKEFLOW_AI float gelu(float x) {
  const float z = x * 0.70710678118654752f;
  const float a = z < 0.f ? -z : z;
  const float t = 1.f / (1.f + 0.3275911f * a);
  float p = 1.061405429f;
  p = p * t - 1.453152027f;
  p = p * t + 1.421413741f;
  p = p * t - 0.284496736f;
  p = p * t + 0.254829592f;
  const float e = 1.f - p * t * exp_approx(-a * a);
  const float erf = z < 0.f ? -e : e;
  return 0.5f * x * (1.f + erf);
}

/// sin and cos of a float angle (|x| up to ~1e6 rad): Cody-Waite reduction by π/2 in double,
/// Taylor polynomials on |r| <= π/4 (error < 2e-9), quadrant by the low bits of k.
SPIKEFLOW_AI void sincos_approx(float xf, float& s_out, float& c_out) {
  const double x = xf;
  constexpr double kMagic = 6755399441055744.0;  // 1.5 * 2^52
  const double kd = x * 0.63661977236758134308 + kMagic;
  const auto q = std::bit_cast<uint64_t>(kd) & 3u;
  const double k = kd - kMagic;
  const double r = (x - k * 1.5707963267341256) - k * 6.077100506506192601e-11;
  const double r2 = r * r;
  double s = -1.0 / 39916800.0;
  s = s * r2 + 1.0 / 362880.0;
  s = s * r2 - 1.0 / 5040.0;
  s = s * r2 + 1.0 / 120.0;
  s = s * r2 - 1.0 / 6.0;
  s = s * r2 * r + r;
  double c = 1.0 / 479001600.0;
  c = c * r2 - 1.0 / 3628800.0;
  c = c * r2 + 1.0 / 40320.0;
  c = c * r2 - 1.0 / 720.0;
  c = c * r2 + 1.0 / 24.0;
  c = c * r2 - 0.5;
  c = c * r2 + 1.0;
  double sv = (q & 1u) != 0 ? c : s;
  double cv = (q & 1u) != 0 ? s : c;
  sv = (q & 2u) != 0 ? -sv : sv;
  cv = ((q + 1u) & 2u) != 0 ? -cv : cv;
  s_out = static_cast<float>(sv);
  c_out = static_cast<float>(cv);
}

/// Largest angle (rad) sincos_float reduces accurately: k = round(x / (π/2)) < 2^13 keeps the
/// products k · C1 and k · C2 below exact. Chunks whose largest angle (offset · ω) is beyond it take
/// the double-precision path (only with chunks wider than ~130 ms at the default periods).
constexpr float kFloatAngleLimit = 8192.f;

/// sin and cos of a float angle 0 <= x <= kFloatAngleLimit: Cody-Waite reduction by π/2 in three
/// float parts, minimax polynomials on |r| <= π/4 (Cephes sinf / cosf; error ~1e-7), quadrant by
/// the low bits of k. All float, so one 8-lane vector per 8 angles.
SPIKEFLOW_AI void sincos_float(float x, float& s_out, float& c_out) {
  constexpr float kMagic = 12582912.f;  // 1.5 * 2^23: adding it rounds to an integer
  const float kf = x * 0.636619772367581343f + kMagic;
  const uint32_t q = std::bit_cast<uint32_t>(kf) & 3u;
  const float k = kf - kMagic;
  float r = x - k * 1.5703125f;
  r = r - k * 4.837512969970703125e-4f;
  r = r - k * 7.54978995489188216e-8f;
  const float z = r * r;
  const float s = ((-1.9515295891e-4f * z + 8.3321608736e-3f) * z - 1.6666654611e-1f) * z * r + r;
  const float c =
      ((2.443315711809948e-5f * z - 1.388731625493765e-3f) * z + 4.166664568298827e-2f) * z * z -
      0.5f * z + 1.f;
  float sv = (q & 1u) != 0 ? c : s;
  float cv = (q & 1u) != 0 ? s : c;
  sv = (q & 2u) != 0 ? -sv : sv;
  cv = ((q + 1u) & 2u) != 0 ? -cv : cv;
  s_out = sv;
  c_out = cv;
}

// ---------------------------------------------------------------- the model

struct SelfAttention {
  LayerNorm norm_attn, norm_mlp;
  Linear to_qkv, to_out, mlp1, mlp2;
};

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

/// A token's rotary features for one frequency from sin / cos of m = fl(t ω) and the score
/// phase correction d (see encode): cos, sin for the values; sin(m + d) to float accuracy for
/// the score's sine term.
SPIKEFLOW_AI void store_rotary(float sv, float cv, float d, float* ci, float* si, float* qi) {
  *ci = cv;
  *si = sv;
  *qi = sv * (1.f - 0.5f * d * d) + cv * d;
}

SPIKEFLOW_AI v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

/// The lane sums of r[0..8) as one vector: (Σ r[0], Σ r[1], ..., Σ r[7]), by three levels of
/// pairwise shuffles and adds (12 shuffles, 7 adds for 8 sums).
SPIKEFLOW_AI v8f transpose_sum8(const v8f* r) {
  typedef int32_t v8i __attribute__((vector_size(32)));
  const auto pairs = [](v8f a, v8f b) {
    return __builtin_shuffle(a, b, v8i{0, 8, 2, 10, 4, 12, 6, 14}) +
           __builtin_shuffle(a, b, v8i{1, 9, 3, 11, 5, 13, 7, 15});
  };
  const v8f s01 = pairs(r[0], r[1]), s23 = pairs(r[2], r[3]), s45 = pairs(r[4], r[5]),
            s67 = pairs(r[6], r[7]);
  const auto quads = [](v8f a, v8f b) {
    return __builtin_shuffle(a, b, v8i{0, 1, 8, 9, 4, 5, 12, 13}) +
           __builtin_shuffle(a, b, v8i{2, 3, 10, 11, 6, 7, 14, 15});
  };
  const v8f s0123 = quads(s01, s23), s4567 = quads(s45, s67);
  return __builtin_shuffle(s0123, s4567, v8i{0, 1, 2, 3, 8, 9, 10, 11}) +
         __builtin_shuffle(s0123, s4567, v8i{4, 5, 6, 7, 12, 13, 14, 15});
}

/// Up to 8 pending scores (a vector of terms, a destination, a constant each), reduced together.
struct ScoreBlock {
  v8f terms[8];
  float* dst[8];
  float add[8];
  int count = 0;
  SPIKEFLOW_AI void push(v8f v, float* d, float c) {
    terms[count] = v;
    dst[count] = d;
    add[count] = c;
    if (++count == 8) flush();
  }
  SPIKEFLOW_AI void flush() {
    if (count == 0) return;
    for (int k = count; k < 8; ++k) terms[k] = v8f{};
    const v8f sums = transpose_sum8(terms);
    for (int k = 0; k < count; ++k) *dst[k] = sums[k] + add[k];
    count = 0;
  }
};

// float(π/2): LibTorch's phase for the sine terms of the scores (models/possm.cpp, Parts::phase).
constexpr float kHalfPiF = static_cast<float>(M_PI / 2);
constexpr float kHalfPiLoF = static_cast<float>(M_PI / 2 - static_cast<double>(kHalfPiF));

/// Attention of the latents over the chunk's n tokens -> m.attn (L, H, hd), then out-projection,
/// residual and MLP -> m.x (L, dim). Mirrors PossmImpl::encode_one / token_terms / finish.
/// HD is the head dim when it is one of the instantiated sizes (loops of a few vectors, unrolled,
/// no aliasing checks: ~5x faster per token than runtime-length loops), 0 for any other.
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
          for (int p = 0; p < P; p += 8) v += load8(a + p) * load8(ci + p) + load8(a + P + p) * load8(qi + p);
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

/// One chunk: encode, self-attention, backbone step, readout, de-standardization -> out.
///
/// Cache order. With the small config the weights a step reads (~1.2 MB, 0.8 MB of it W_hh) are a
/// little more than a 1 MB L2, and a loop over more than the cache in the same order every time
/// misses on everything under LRU-like replacement (3-4x slower: L3 bandwidth). W_hh h depends on
/// the previous state only, so (when prepare_next() has not done it already) every other step
/// runs it first and backwards: the sequence of weights becomes "encode, W_ih, W_hh forward |
/// W_hh backward, encode, W_ih | ...", and each step starts with what the previous one touched
/// last, missing only on the excess.
SPIKEFLOW_CLONES void run_step(Model& m,
                                                                          const int32_t* unit,
                                                                          const float* off,
                                                                          size_t n, float* out) {
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
SPIKEFLOW_CLONES void run_features(
    Model& m, const core::TokenChunk& c, float* proj) {
  features(m, c.unit.data(), c.offset_s.data(), c.size());
  apply(m.gru ? m.gru_ih : m.s4d_in, m.x.data(), proj);
}

/// The recurrent step of one chunk from its input projection (step_many with threads: the
/// calling thread, in chunk order).
SPIKEFLOW_CLONES void run_recur(Model& m,
                                                                           const float* proj,
                                                                           float* out) {
  recur(m, proj, out);
}


// ---------------------------------------------------------------- load-time checks

void check_linear(std::vector<std::string>& errors, const char* name, const FastLinearWeights& w,
                  int in, int out, bool bias) {
  if (w.in != in || w.out != out ||
      w.w.size() != static_cast<size_t>(in) * static_cast<size_t>(out) ||
      (bias ? w.b.size() != static_cast<size_t>(out) : !w.b.empty())) {
    errors.push_back(std::string(name) + ": expected (" + std::to_string(out) + " x " +
                     std::to_string(in) + ")" + (bias ? " + bias" : "") + ", got (" +
                     std::to_string(w.out) + " x " + std::to_string(w.in) + "), " +
                     std::to_string(w.w.size()) + " weights, " + std::to_string(w.b.size()) +
                     " biases");
  }
}

void check_size(std::vector<std::string>& errors, const char* name, const std::vector<float>& v,
                size_t expected) {
  if (v.size() != expected) {
    errors.push_back(std::string(name) + ": expected " + std::to_string(expected) +
                     " values, got " + std::to_string(v.size()));
  }
}

void check_ln(std::vector<std::string>& errors, const char* name, const FastLayerNormWeights& w,
              int n) {
  check_size(errors, name, w.w, static_cast<size_t>(n));
  check_size(errors, name, w.b, static_cast<size_t>(n));
}

/// (R, 16) row-major -> (16, R).
void pack_modes(Buf& dst, const std::vector<float>& src, int channels) {
  dst.resize(static_cast<size_t>(channels) * kS4dModes);
  for (int c = 0; c < channels; ++c)
    for (int k = 0; k < kS4dModes; ++k)
      dst[static_cast<size_t>(k) * channels + c] = src[static_cast<size_t>(c) * kS4dModes + k];
}

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

struct FastPossmDecoder::Impl {
  Model m;
  // threads >= 2: a second copy of the model whose work buffers encode chunks for step_many
  // on a thread the caller lends (set_parallel_invoke), while this one runs the recurrence.
  std::unique_ptr<Model> helper;
  StreamingDecoder::ParallelInvoke invoke;  // the caller's threads (set_parallel_invoke)
  uint64_t generation = 0;  // of step_many calls, for Model::ready
  int threads = 1;
  std::vector<core::UnitKey> units;
  int64_t width_ns = 0;
  std::string describe;
};

FastPossmDecoder::FastPossmDecoder(const FastPossmWeights& w, int threads)
    : impl_(std::make_unique<Impl>()) {
  const PossmConfig& c = w.config;
  validate_possm_config(c);
  std::vector<std::string> errors;
  const int U = static_cast<int>(w.units.size()), L = c.num_latents, H = c.num_heads,
            Hkv = c.num_kv_heads, D = c.dim, hd = D / H, P = hd / 4, R = c.rnn_hidden;
  const auto sz = [](auto... n) { return (static_cast<size_t>(n) * ...); };
  if (U <= 0) errors.push_back("the unit map is empty");
  if (w.output_dim <= 0) errors.push_back("output_dim must be > 0");
  if (w.width_ns <= 0) errors.push_back("width_ns must be > 0");
  check_size(errors, "target_mean", w.target_mean, sz(w.output_dim));
  check_size(errors, "target_std", w.target_std, sz(w.output_dim));
  check_size(errors, "omega", w.omega, sz(P));
  check_size(errors, "score", w.score, sz(U, L * H, 2 * P + 1));
  check_size(errors, "value", w.value, sz(U, Hkv, hd));
  check_size(errors, "latents", w.latents, sz(L, D));
  check_linear(errors, "out", w.out, H * hd, D, true);
  check_ln(errors, "norm_mlp", w.norm_mlp, D);
  check_linear(errors, "mlp1", w.mlp1, D, w.mlp1.out, true);
  check_linear(errors, "mlp2", w.mlp2, w.mlp1.out, D, true);
  if (w.self_attn.size() != static_cast<size_t>(c.self_attn_layers)) {
    errors.push_back("self_attn: expected " + std::to_string(c.self_attn_layers) + " layers, got " +
                     std::to_string(w.self_attn.size()));
  }
  for (const auto& sa : w.self_attn) {
    check_ln(errors, "self_attn.norm_attn", sa.norm_attn, D);
    check_ln(errors, "self_attn.norm_mlp", sa.norm_mlp, D);
    check_linear(errors, "self_attn.to_qkv", sa.to_qkv, D, 3 * D, false);
    check_linear(errors, "self_attn.to_out", sa.to_out, D, D, true);
    check_linear(errors, "self_attn.mlp1", sa.mlp1, D, sa.mlp1.out, true);
    check_linear(errors, "self_attn.mlp2", sa.mlp2, sa.mlp1.out, D, true);
  }
  const bool gru = c.backbone == "gru";
  if (gru) {
    check_linear(errors, "gru_ih", w.gru_ih, L * D, 3 * R, true);
    check_linear(errors, "gru_hh", w.gru_hh, R, 3 * R, true);
  } else {
    check_linear(errors, "s4d_in", w.s4d_in, L * D, R, true);
    for (const auto* v : {&w.s4d_er, &w.s4d_ei, &w.s4d_br, &w.s4d_bi, &w.s4d_cr, &w.s4d_ci})
      check_size(errors, "s4d coefficients", *v, sz(R, kS4dModes));
    check_size(errors, "s4d_d", w.s4d_d, sz(R));
  }
  check_linear(errors, "readout", w.readout, R, w.output_dim, true);
  if (!errors.empty()) {
    std::string msg = "FastPossmDecoder: bad weights:";
    for (const auto& e : errors) msg += "\n  - " + e;
    throw std::invalid_argument(msg);
  }

  if (threads < 1) throw std::invalid_argument("FastPossmDecoder: threads must be >= 1");
  // Packs the weights and allocates the work buffers of one Model.
  const auto pack = [&](Model& m) {
  m.num_units = U;
  m.num_latents = L;
  m.heads = H;
  m.kv_heads = Hkv;
  m.group = H / Hkv;
  m.head_dim = hd;
  m.pairs = P;
  m.score_len = 2 * P + 1;
  m.lh = L * H;
  m.dim = D;
  m.hidden = R;
  m.features = L * D;
  m.output_dim = w.output_dim;
  m.gru = gru;
  m.omega.assign(w.omega);
  for (float om : w.omega) m.max_omega = std::max(m.max_omega, std::abs(om));
  {
    const size_t score_len = sz(L * H, 2 * P + 1), value_len = sz(Hkv, hd);
    m.value_offset = score_len;
    m.row_stride = (score_len + value_len + 15) / 16 * 16;
    m.unit_rows.resize(sz(U) * m.row_stride);
    for (size_t u = 0; u < sz(U); ++u) {
      std::copy_n(w.score.begin() + static_cast<std::ptrdiff_t>(u * score_len), score_len,
                  m.unit_rows.data() + u * m.row_stride);
      std::copy_n(w.value.begin() + static_cast<std::ptrdiff_t>(u * value_len), value_len,
                  m.unit_rows.data() + u * m.row_stride + score_len);
    }
  }
  m.latents.assign(w.latents);
  m.out = pack_linear(w.out);
  m.mlp1 = pack_linear(w.mlp1);
  m.mlp2 = pack_linear(w.mlp2);
  m.norm_mlp = pack_ln(w.norm_mlp);
  int widest = std::max({w.mlp1.out, 3 * D, 8});
  for (const auto& sa : w.self_attn) {
    m.self_attn.push_back({pack_ln(sa.norm_attn), pack_ln(sa.norm_mlp), pack_linear(sa.to_qkv),
                           pack_linear(sa.to_out), pack_linear(sa.mlp1), pack_linear(sa.mlp2)});
    widest = std::max(widest, sa.mlp1.out);
  }
  if (gru) {
    m.gru_ih = pack_linear(w.gru_ih);
    m.gru_hh = pack_linear(w.gru_hh);
  } else {
    m.s4d_in = pack_linear(w.s4d_in);
    pack_modes(m.s4d_er, w.s4d_er, R);
    pack_modes(m.s4d_ei, w.s4d_ei, R);
    pack_modes(m.s4d_br, w.s4d_br, R);
    pack_modes(m.s4d_bi, w.s4d_bi, R);
    pack_modes(m.s4d_cr, w.s4d_cr, R);
    pack_modes(m.s4d_ci, w.s4d_ci, R);
    m.s4d_d.assign(w.s4d_d);
  }
  m.readout = pack_linear(w.readout);
  m.target_mean.assign(w.target_mean);
  m.target_std.assign(w.target_std);
  // Work buffers, each padded to whole vectors (Buf rounds up to 16 floats).
  m.h.resize(sz(R));
  m.s_re.resize(sz(R, kS4dModes));
  m.s_im.resize(sz(R, kS4dModes));
  m.rotated.resize(sz(hd));
  m.num.resize(sz(L * H, hd));
  m.den.resize(sz(L * H));
  m.attn.resize(sz(L * H, hd));
  m.x.resize(sz(L, D));
  m.ln.resize(sz(D));
  m.tmp.resize(sz(std::max(D, 8)));
  m.mlp_hidden.resize(sz(widest));
  m.qkv.resize(sz(L, 3 * D));
  m.sa_out.resize(sz(L, D));
  m.probs.resize(sz(L));
  m.gi.resize(sz(3 * R));
  m.gh.resize(sz(3 * R));
  m.u.resize(sz(R));
  m.y.resize(sz(R));
  m.o.resize(sz(w.output_dim));
  m.reserve_tokens(kInitialTokenCapacity);

  };
  pack(impl_->m);
  impl_->threads = threads;
  if (threads >= 2) {
    impl_->helper = std::make_unique<Model>();
    pack(*impl_->helper);
    impl_->m.reserve_batch(kInitialBatchCapacity);
  }
  impl_->units = w.units;
  impl_->width_ns = w.width_ns;
  impl_->describe =
      "possm-fast d" + std::to_string(D) + " " + c.backbone + std::to_string(R) +
      (L > 1 ? " l" + std::to_string(L) : std::string()) +
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

int FastPossmDecoder::output_dim() const { return impl_->m.output_dim; }
const std::vector<core::UnitKey>& FastPossmDecoder::units() const { return impl_->units; }
int64_t FastPossmDecoder::chunk_width_ns() const { return impl_->width_ns; }
std::string FastPossmDecoder::describe() const { return impl_->describe; }

}  // namespace spikeflow::models
