// Kernels of the fast POSSM step (models/fast_possm_decoder.cpp): aligned buffers, the packed
// dense layer and LayerNorm, branch-free elementwise math and 8-float vector helpers. Internal to
// the fast path (torch-free). Everything called from the step is always_inline, so that it is
// compiled into each target_clones clone of the step's entry points with the fast path's flags
// (-O3 -fopenmp-simd -fno-trapping-math, models/CMakeLists.txt): include this header only from
// translation units built with those flags.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

#define SPIKEFLOW_AI inline __attribute__((always_inline))

namespace spikeflow::models::fast_possm {

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

/// y = W x + b with W packed in panels of up to 64 rows: panel r0 holds W[r0 .. r0+width) as
/// (in, width), so that the kernel streams W once, broadcasting x[j], with no horizontal sums.
struct Linear {
  int in = 0, out = 0, out_pad = 0;
  Buf panel, bias;
};

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

/// LayerNorm over n values (FastLayerNormWeights, aligned).
struct LayerNorm {
  Buf w, b;
  float eps = 1e-5f;
  int n = 0;
};

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
/// products k · C1 and k · C2 below exact. Chunks whose largest angle (offset · ω) is beyond it
/// take the double-precision path (only with chunks wider than ~130 ms at the default periods).
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

// ---------------------------------------------------------------- 8-float vectors

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

}  // namespace spikeflow::models::fast_possm
