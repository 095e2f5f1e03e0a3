#include "models/possm.h"

#include <dlfcn.h>

#include <cmath>
#include <sstream>
#include <stdexcept>

namespace spikeflow::models {

namespace F = torch::nn::functional;
using torch::Tensor;
using torch::indexing::Slice;

void set_torch_threads(int threads) {
  torch::set_num_threads(threads);
  using SetThreads = void (*)(int);
  static const auto openblas_set =
      reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (openblas_set != nullptr) openblas_set(1);
}

// ---------------------------------------------------------------- rotary time embedding

RotaryTimeEmbeddingImpl::RotaryTimeEmbeddingImpl(RotaryTimeEmbeddingOptions options_)
    : options(options_) {
  const int64_t pairs = options.head_dim() / 4;
  std::vector<float> w(static_cast<size_t>(pairs));
  for (int64_t i = 0; i < pairs; ++i) {
    const double frac = pairs > 1 ? static_cast<double>(i) / static_cast<double>(pairs - 1) : 0.0;
    const double period =
        options.min_period_s() * std::pow(options.max_period_s() / options.min_period_s(), frac);
    w[static_cast<size_t>(i)] = static_cast<float>(2.0 * M_PI / period);
  }
  omega = register_buffer("omega", torch::tensor(w));
}

std::pair<Tensor, Tensor> RotaryTimeEmbeddingImpl::forward(const Tensor& t) const {
  Tensor angle = t.unsqueeze(-1) * omega;
  return {angle.cos(), angle.sin()};
}

Tensor RotaryTimeEmbeddingImpl::rotate(const Tensor& x, const Tensor& cos, const Tensor& sin) {
  const int64_t p = cos.size(-1);
  Tensor x1 = x.narrow(-1, 0, p);
  Tensor x2 = x.narrow(-1, p, p);
  Tensor rest = x.narrow(-1, 2 * p, x.size(-1) - 2 * p);
  return torch::cat({x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest}, -1);
}

// ---------------------------------------------------------------- latent cross-attention

LatentCrossAttentionImpl::LatentCrossAttentionImpl(LatentCrossAttentionOptions options_)
    : options(options_) {
  const int64_t dim = options.dim(), hd = head_dim();
  norm_q = register_module("norm_q", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  norm_kv = register_module("norm_kv", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  norm_mlp = register_module("norm_mlp", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  to_q = register_module(
      "to_q",
      torch::nn::Linear(torch::nn::LinearOptions(dim, options.num_heads() * hd).bias(false)));
  to_k = register_module(
      "to_k",
      torch::nn::Linear(torch::nn::LinearOptions(dim, options.num_kv_heads() * hd).bias(false)));
  to_v = register_module(
      "to_v",
      torch::nn::Linear(torch::nn::LinearOptions(dim, options.num_kv_heads() * hd).bias(false)));
  to_out = register_module("to_out", torch::nn::Linear(options.num_heads() * hd, dim));
  mlp = register_module(
      "mlp",
      torch::nn::Sequential(torch::nn::Linear(dim, dim * options.mlp_ratio()), torch::nn::GELU(),
                            torch::nn::Linear(dim * options.mlp_ratio(), dim)));
}

std::pair<Tensor, Tensor> LatentCrossAttentionImpl::kv_table(const Tensor& unit_embeddings) {
  Tensor x = norm_kv(unit_embeddings);
  const int64_t u = unit_embeddings.size(0);
  return {to_k(x).view({u, options.num_kv_heads(), head_dim()}),
          to_v(x).view({u, options.num_kv_heads(), head_dim()})};
}

Tensor LatentCrossAttentionImpl::queries(const Tensor& latents, const Tensor& cos,
                                         const Tensor& sin) {
  const int64_t l = latents.size(0);
  Tensor q = to_q(norm_q(latents)).view({l, options.num_heads(), head_dim()});
  q = RotaryTimeEmbeddingImpl::rotate(q, cos, sin);
  return q * (1.0 / std::sqrt(static_cast<double>(head_dim())));
}

Tensor LatentCrossAttentionImpl::out_weight(const Tensor& cos, const Tensor& sin) {
  // Counter-rotation is linear: rotate(a, cos, -sin) = a · R with R = rotate(I, cos, -sin) per
  // head (POYO rotary value embedding: a value's contribution depends on token - latent time).
  const int64_t hd = head_dim();
  Tensor r = RotaryTimeEmbeddingImpl::rotate(torch::eye(hd, cos.options()), cos, -sin);  // (hd, hd)
  Tensor block = torch::kron(torch::eye(options.num_heads(), cos.options()), r);  // (H*hd, H*hd)
  return torch::matmul(to_out->weight, block.t());
}

Tensor LatentCrossAttentionImpl::finish(const Tensor& attn, const Tensor& latents,
                                        const Tensor& w_out) {
  const int64_t s = attn.size(0), l = attn.size(1);
  Tensor x = latents.unsqueeze(0) +
             torch::nn::functional::linear(attn.reshape({s, l, options.num_heads() * head_dim()}),
                                           w_out, to_out->bias);
  return x + mlp->forward(norm_mlp(x));
}

// ---------------------------------------------------------------- latent self-attention

LatentSelfAttentionImpl::LatentSelfAttentionImpl(int64_t dim, int64_t num_heads)
    : dim_(dim), num_heads_(num_heads) {
  norm_attn =
      register_module("norm_attn", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  norm_mlp = register_module("norm_mlp", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})));
  to_qkv = register_module("to_qkv",
                           torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim).bias(false)));
  to_out = register_module("to_out", torch::nn::Linear(dim, dim));
  mlp = register_module("mlp",
                        torch::nn::Sequential(torch::nn::Linear(dim, 4 * dim), torch::nn::GELU(),
                                              torch::nn::Linear(4 * dim, dim)));
}

Tensor LatentSelfAttentionImpl::forward(const Tensor& x) {
  const int64_t s = x.size(0), l = x.size(1), hd = dim_ / num_heads_;
  auto qkv = to_qkv(norm_attn(x)).view({s, l, 3, num_heads_, hd}).unbind(2);
  Tensor scores = torch::einsum("slhd,smhd->shlm", {qkv[0], qkv[1]}) *
                  (1.0 / std::sqrt(static_cast<double>(hd)));
  Tensor out = torch::einsum("shlm,smhd->slhd", {scores.softmax(-1), qkv[2]}).reshape({s, l, dim_});
  Tensor y = x + to_out(out);
  return y + mlp->forward(norm_mlp(y));
}

// ---------------------------------------------------------------- S4D

S4DImpl::S4DImpl(int64_t input_dim, int64_t channels) : channels_(channels) {
  in_proj = register_module("in_proj", torch::nn::Linear(input_dim, channels));
  const double dt_min = 0.05, dt_max = 0.5;  // memory of a few to a few tens of chunks
  log_dt = register_parameter(
      "log_dt", torch::rand({channels}) * (std::log(dt_max) - std::log(dt_min)) + std::log(dt_min));
  log_a_real = register_parameter("log_a_real", torch::full({channels, kStateSize}, std::log(0.5)));
  a_imag = register_parameter(
      "a_imag",
      (torch::arange(kStateSize, torch::kFloat) * M_PI).unsqueeze(0).repeat({channels, 1}));
  c = register_parameter("c", torch::randn({channels, kStateSize, 2}) * std::sqrt(0.5));
  d = register_parameter("d", torch::ones({channels}));
}

Tensor S4DImpl::initial_state(int64_t batch, const torch::TensorOptions& opts) const {
  return torch::zeros({2, batch, channels_, kStateSize}, opts);
}

std::pair<Tensor, Tensor> S4DImpl::forward(const Tensor& x, const Tensor& state) {
  // ZOH: Ā = exp(dt A), B̄ = (Ā - 1) / A · B with B = 1; y = 2 Re(C x) + D u.
  Tensor u = in_proj(x);  // (B, C, H)
  Tensor dt = log_dt.exp().unsqueeze(-1);
  Tensor ar = -log_a_real.exp(), ai = a_imag;
  Tensor mag = (dt * ar).exp();
  Tensor er = mag * (dt * ai).cos(), ei = mag * (dt * ai).sin();
  Tensor den = ar * ar + ai * ai;
  Tensor br = ((er - 1) * ar + ei * ai) / den, bi = (ei * ar - (er - 1) * ai) / den;
  Tensor cr = c.select(-1, 0), ci = c.select(-1, 1);
  Tensor sr = state[0], si = state[1];
  std::vector<Tensor> ys;
  ys.reserve(static_cast<size_t>(u.size(1)));
  for (int64_t t = 0; t < u.size(1); ++t) {
    Tensor ut = u.select(1, t);
    Tensor u3 = ut.unsqueeze(-1);
    Tensor nr = er * sr - ei * si + br * u3;
    Tensor ni = er * si + ei * sr + bi * u3;
    sr = nr;
    si = ni;
    Tensor y = 2 * (cr * sr - ci * si).sum(-1) + d * ut;
    ys.push_back(F::gelu(y));
  }
  return {torch::stack(ys, 1), torch::stack({sr, si}, 0)};
}

// ---------------------------------------------------------------- collate

namespace {

bool keep(const std::vector<std::vector<uint8_t>>* keep_units, size_t b, int32_t unit) {
  return keep_units == nullptr || (*keep_units)[b][static_cast<size_t>(unit)] != 0;
}

}  // namespace

PaddedBatch collate_padded(const Windows& windows,
                           const std::vector<std::vector<uint8_t>>* keep_units) {
  const int64_t b_n = static_cast<int64_t>(windows.size());
  int64_t c_n = 1, t_n = 1;
  for (size_t b = 0; b < windows.size(); ++b) {
    c_n = std::max<int64_t>(c_n, static_cast<int64_t>(windows[b].size()));
    for (const auto* ch : windows[b]) {
      int64_t n = 0;
      for (int32_t u : ch->unit) n += keep(keep_units, b, u) ? 1 : 0;
      t_n = std::max(t_n, n);
    }
  }
  PaddedBatch out;
  out.unit = torch::zeros({b_n, c_n, t_n}, torch::kLong);
  out.offset = torch::zeros({b_n, c_n, t_n}, torch::kFloat);
  out.token_mask = torch::zeros({b_n, c_n, t_n}, torch::kBool);
  out.chunk_mask = torch::zeros({b_n, c_n}, torch::kBool);
  auto unit = out.unit.accessor<int64_t, 3>();
  auto off = out.offset.accessor<float, 3>();
  auto tm = out.token_mask.accessor<bool, 3>();
  auto cm = out.chunk_mask.accessor<bool, 2>();
  for (size_t b = 0; b < windows.size(); ++b) {
    for (size_t c = 0; c < windows[b].size(); ++c) {
      const auto& ch = *windows[b][c];
      cm[b][c] = true;
      int64_t t = 0;
      for (size_t i = 0; i < ch.unit.size(); ++i) {
        if (!keep(keep_units, b, ch.unit[i])) continue;
        unit[b][c][t] = ch.unit[i];
        off[b][c][t] = ch.offset_s[i];
        tm[b][c][t] = true;
        ++t;
      }
    }
  }
  return out;
}

PackedBatch collate_packed(const Windows& windows,
                           const std::vector<std::vector<uint8_t>>* keep_units) {
  PackedBatch out;
  out.batch = static_cast<int64_t>(windows.size());
  out.chunks = 1;
  size_t n = 0;
  for (const auto& w : windows) {
    out.chunks = std::max<int64_t>(out.chunks, static_cast<int64_t>(w.size()));
    for (const auto* ch : w) n += ch->size();
  }
  std::vector<int64_t> unit, seg;
  std::vector<float> off;
  unit.reserve(n);
  seg.reserve(n);
  off.reserve(n);
  out.chunk_mask = torch::zeros({out.batch, out.chunks}, torch::kBool);
  auto cm = out.chunk_mask.accessor<bool, 2>();
  for (size_t b = 0; b < windows.size(); ++b) {
    for (size_t c = 0; c < windows[b].size(); ++c) {
      const auto& ch = *windows[b][c];
      cm[b][c] = true;
      const int64_t s = static_cast<int64_t>(b) * out.chunks + static_cast<int64_t>(c);
      for (size_t i = 0; i < ch.unit.size(); ++i) {
        if (!keep(keep_units, b, ch.unit[i])) continue;
        unit.push_back(ch.unit[i]);
        off.push_back(ch.offset_s[i]);
        seg.push_back(s);
      }
    }
  }
  const int64_t m = static_cast<int64_t>(unit.size());
  out.unit = torch::from_blob(unit.data(), {m}, torch::kLong).clone();
  out.offset = torch::from_blob(off.data(), {m}, torch::kFloat).clone();
  out.segment = torch::from_blob(seg.data(), {m}, torch::kLong).clone();
  return out;
}

// ---------------------------------------------------------------- Possm

namespace {

/// Drops LibTorch's one-time "scatter_reduce() is in beta" notice (it would reach the CLI's
/// stderr), forwarding every other warning to the handler it replaces.
class BetaWarningFilter : public c10::WarningHandler {
 public:
  BetaWarningFilter() : prev_(c10::Warning::get_warning_handler()) {}
  void process(const c10::SourceLocation& loc, const std::string& msg,
               const bool verbatim) override {
    if (msg.find("is in beta") != std::string::npos) return;
    prev_->process(loc, msg, verbatim);
  }

 private:
  c10::WarningHandler* prev_;
};

/// LibTorch 1.13 prints a one-time "scatter_reduce() is in beta" notice on stderr (where the CLI
/// would show it): use scatter_reduce once with the filter installed. The handler is global and
/// not thread-safe to swap, so this runs exactly once (function-local static), not per call.
bool silence_scatter_reduce_notice() {
  BetaWarningFilter filter;
  c10::Warning::WarningHandlerGuard guard(&filter);
  torch::NoGradGuard no_grad;
  torch::zeros({1}).scatter_reduce(0, torch::zeros({1}, torch::kLong), torch::ones({1}), "amax",
                                   false);
  return true;
}

}  // namespace

PossmImpl::PossmImpl(PossmOptions options_) : options(std::move(options_)) {
  const PossmConfig& c = options.config();
  validate_possm_config(c);
  if (options.num_units() <= 0) throw std::invalid_argument("POSSM: num_units must be > 0");
  if (options.output_dim() <= 0) throw std::invalid_argument("POSSM: output_dim must be > 0");
  if (!(options.width_s() > 0)) throw std::invalid_argument("POSSM: chunk width must be > 0");
  const int64_t dim = c.dim, hd = dim / c.num_heads;
  unit_emb = register_module("unit_emb", torch::nn::Embedding(options.num_units(), dim));
  latents = register_parameter("latents", torch::randn({c.num_latents, dim}) * 0.02);
  rotary = register_module("rotary", RotaryTimeEmbedding(RotaryTimeEmbeddingOptions(hd)
                                                             .min_period_s(c.rope_min_period_s)
                                                             .max_period_s(c.rope_max_period_s)));
  cross = register_module(
      "cross", LatentCrossAttention(LatentCrossAttentionOptions(dim, c.num_heads, c.num_kv_heads)));
  self_attn = register_module("self_attn", torch::nn::ModuleList());
  for (int i = 0; i < c.self_attn_layers; ++i)
    self_attn->push_back(LatentSelfAttention(dim, c.num_heads));
  const int64_t features = c.num_latents * dim;
  if (c.backbone == "gru") {
    gru = register_module(
        "gru", torch::nn::GRU(torch::nn::GRUOptions(features, c.rnn_hidden).batch_first(true)));
  } else {
    s4d = register_module("s4d", S4D(features, c.rnn_hidden));
  }
  readout = register_module("readout", torch::nn::Linear(c.rnn_hidden, options.output_dim()));
  if (options.num_sessions() < 0) throw std::invalid_argument("POSSM: num_sessions must be >= 0");
  if (options.num_sessions() > 0) {
    session_emb =
        register_parameter("session_emb", torch::randn({options.num_sessions(), features}) * 0.02);
  }
  latent_time_ = register_buffer("latent_time", torch::full({1}, options.width_s(), torch::kFloat));
}

PossmImpl::Parts PossmImpl::parts() {
  if (cache_) return *cache_;
  auto [k, v] = cross->kv_table(unit_emb->weight);  // (U, Hkv, hd)
  auto [cos, sin] = rotary->forward(latent_time_);  // (1, P)
  Tensor q = cross->queries(latents, cos, sin);     // (L, H, hd), scaled
  const int64_t u = k.size(0), hkv = k.size(1), hd = k.size(2), l = q.size(0), h = q.size(1);
  const int64_t g = h / hkv, pn = cos.size(-1);
  Tensor qg = q.view({1, l, hkv, g, hd});
  Tensor kg = k.view({u, 1, hkv, 1, hd});
  Tensor q1 = qg.narrow(-1, 0, pn), q2 = qg.narrow(-1, pn, pn),
         qr = qg.narrow(-1, 2 * pn, hd - 2 * pn);
  Tensor k1 = kg.narrow(-1, 0, pn), k2 = kg.narrow(-1, pn, pn),
         kr = kg.narrow(-1, 2 * pn, hd - 2 * pn);
  Tensor a = q1 * k1 + q2 * k2;  // (U, L, Hkv, G, P)
  Tensor bb = q2 * k1 - q1 * k2;
  Tensor r = (qr * kr).sum(-1, true);  // (U, L, Hkv, G, 1)
  Parts p;
  p.score = torch::cat({a, bb, r}, -1).reshape({u, l * h, 2 * pn + 1});
  p.v = v;
  p.v_swap = torch::cat({v.narrow(-1, pn, pn), v.narrow(-1, 0, pn),
                         torch::zeros_like(v.narrow(-1, 2 * pn, hd - 2 * pn))},
                        -1);
  p.out_weight = cross->out_weight(cos, sin);
  {
    torch::NoGradGuard no_grad;
    const auto o = cos.options();
    Tensor w = rotary->omega;
    p.omega2 = torch::cat({w, w, torch::zeros({1}, o)});
    p.phase =
        torch::cat({torch::zeros({pn}, o), torch::full({pn}, -M_PI / 2, o), torch::zeros({1}, o)});
    p.omega_full = torch::cat({w, w, torch::zeros({hd - 2 * pn}, o)});
    p.sign =
        torch::cat({-torch::ones({pn}, o), torch::ones({pn}, o), torch::zeros({hd - 2 * pn}, o)});
  }
  return p;
}

void PossmImpl::freeze_for_inference() {
  torch::NoGradGuard no_grad;
  cache_.reset();
  cache_ = parts();
}

std::pair<Tensor, Tensor> PossmImpl::token_terms(const Parts& p, const Tensor& unit,
                                                 const Tensor& offset) {
  const int64_t n = unit.size(0), lh = p.score.size(1), l = options.config().num_latents;
  Tensor t = offset.unsqueeze(-1);
  // [cos ωt, sin ωt, 1] as one cos (sin x = cos(x - π/2)); few ops matter in the streaming step.
  Tensor phi = torch::addcmul(p.phase, t, p.omega2).cos_();  // (N, 2P+1)
  Tensor scores = torch::bmm(p.score.index_select(0, unit), phi.unsqueeze(-1)).view({n, l, lh / l});
  Tensor angle = t * p.omega_full;                         // (N, hd)
  Tensor c_full = angle.cos().unsqueeze(1);                // [cos, cos, 1]
  Tensor s_full = angle.sin_().mul_(p.sign).unsqueeze(1);  // [-sin, sin, 0]
  Tensor values =
      torch::addcmul(p.v.index_select(0, unit) * c_full, p.v_swap.index_select(0, unit), s_full);
  return {scores, values};
}

Tensor PossmImpl::weighted_values(const Tensor& e, const Tensor& values) {
  // e (N, L, H), values (N, Hkv, hd) -> per token (N, L, H, hd) without repeating K/V heads.
  const int64_t n = e.size(0), l = e.size(1), h = e.size(2), hkv = values.size(1),
                hd = values.size(2);
  return (e.view({n, l, hkv, h / hkv, 1}) * values.view({n, 1, hkv, 1, hd})).view({n, l, h, hd});
}

Tensor PossmImpl::finish(const Tensor& attn, const Parts& p) {
  Tensor x = cross->finish(attn, latents, p.out_weight);
  for (const auto& m : *self_attn) x = m->as<LatentSelfAttention>()->forward(x);
  return x.reshape({x.size(0), -1});
}

Tensor PossmImpl::encode_packed(const Tensor& unit, const Tensor& offset, const Tensor& segment,
                                int64_t s_n) {
  Parts p = parts();
  auto [scores, values] = token_terms(p, unit, offset);  // (N, L, H), (N, Hkv, hd)
  const int64_t n = scores.size(0), l = scores.size(1), h = scores.size(2), hd = values.size(2);
  // Segment softmax: subtract the per-chunk max (a constant per segment, so no gradient needed).
  Tensor seg3 = segment.view({n, 1, 1}).expand({n, l, h});
  static const bool quiet = silence_scatter_reduce_notice();
  (void)quiet;
  Tensor mx = torch::zeros({s_n, l, h}, scores.options())
                  .scatter_reduce(0, seg3, scores.detach(), "amax", /*include_self=*/false);
  Tensor e = (scores - mx.index_select(0, segment)).exp();
  Tensor den = torch::zeros({s_n, l, h}, scores.options()).index_add(0, segment, e);
  Tensor num = torch::zeros({s_n, l, h, hd}, scores.options())
                   .index_add(0, segment, weighted_values(e, values));
  // An empty chunk has den == 0 and num == 0: its attention output is exactly 0.
  Tensor attn = num / den.masked_fill(den == 0, 1.0).unsqueeze(-1);
  return finish(attn, p);
}

Tensor PossmImpl::encode_padded(const Tensor& unit, const Tensor& offset, const Tensor& mask) {
  Parts p = parts();
  const int64_t s_n = unit.size(0), t_n = unit.size(1);
  auto [scores, values] = token_terms(p, unit.reshape({-1}), offset.reshape({-1}));
  const int64_t l = scores.size(1), h = scores.size(2), hkv = values.size(1), hd = values.size(2);
  Tensor sc = scores.view({s_n, t_n, l, h}).permute({0, 2, 3, 1});  // (S, L, H, T)
  Tensor m = mask.view({s_n, 1, 1, t_n});
  Tensor masked = sc.masked_fill(m.logical_not(), -std::numeric_limits<float>::infinity());
  Tensor mx = masked.detach().amax(-1, true);
  mx = mx.masked_fill(mx.isinf(), 0.0);  // all-masked (empty) chunk
  Tensor e = (masked - mx).exp();        // exp(-inf) = 0 on padding
  Tensor den = e.sum(-1);                // (S, L, H)
  // (S, L, Hkv, G, T) x (S, T, Hkv, hd) -> (S, L, Hkv, G, hd)
  Tensor num = torch::einsum("slkgt,stkd->slkgd", {e.view({s_n, l, hkv, h / hkv, t_n}),
                                                   values.view({s_n, t_n, hkv, hd})})
                   .reshape({s_n, l, h, hd});
  Tensor attn = num / den.masked_fill(den == 0, 1.0).unsqueeze(-1);
  return finish(attn, p);
}

Tensor PossmImpl::encode_one(const Tensor& unit, const Tensor& offset) {
  Parts p = parts();
  const int64_t l = options.config().num_latents, h = options.config().num_heads, hd = p.v.size(2);
  Tensor attn;
  if (unit.size(0) == 0) {
    attn = torch::zeros({1, l, h, hd}, p.v.options());
  } else {
    auto [scores, values] = token_terms(p, unit, offset);  // (N, L, H), (N, Hkv, hd)
    const int64_t n = scores.size(0), hkv = values.size(1);
    Tensor e = (scores - std::get<0>(scores.max(0, true))).exp();
    Tensor den = e.sum(0);  // (L, H)
    // (Hkv, L*G, N) @ (Hkv, N, hd) -> (Hkv, L*G, hd)
    Tensor eg = e.view({n, l, hkv, h / hkv}).permute({2, 1, 3, 0}).reshape({hkv, l * (h / hkv), n});
    Tensor num = torch::bmm(eg, values.transpose(0, 1))
                     .view({hkv, l, h / hkv, hd})
                     .permute({1, 0, 2, 3})
                     .reshape({l, h, hd});
    attn = (num / den.unsqueeze(-1)).unsqueeze(0);
  }
  return finish(attn, p);
}

Tensor PossmImpl::initial_state(int64_t batch) {
  const auto opts = readout->weight.options();
  if (gru) return torch::zeros({1, batch, options.config().rnn_hidden}, opts);
  return s4d->initial_state(batch, opts);
}

std::pair<Tensor, Tensor> PossmImpl::decode(const Tensor& features_in, const Tensor& state,
                                            const Tensor& session) {
  Tensor features = features_in;
  if (session_emb.defined()) {
    if (!session.defined())
      throw std::invalid_argument("POSSM: a multi-session model needs the session of each window");
    features = features + session_emb.index_select(0, session).unsqueeze(1);
  }
  Tensor y, st;
  if (gru && features.size(1) == 1) {
    // One chunk (the streaming step): the GRU cell op on the same weights skips aten::gru's
    // sequence machinery (about half of a step's time).
    const auto w = gru->all_weights();  // w_ih, w_hh, b_ih, b_hh (one layer)
    st = torch::gru_cell(features.select(1, 0), state[0], w[0], w[1], w[2], w[3]).unsqueeze(0);
    y = st.transpose(0, 1);
  } else if (gru) {
    std::tie(y, st) = gru->forward(features, state);
  } else {
    std::tie(y, st) = s4d->forward(features, state);
  }
  return {readout(y), st};
}

Tensor PossmImpl::forward_packed(const PackedBatch& b) {
  Tensor feat =
      encode_packed(b.unit, b.offset, b.segment, b.batch * b.chunks).view({b.batch, b.chunks, -1});
  return decode(feat, initial_state(b.batch), b.session).first;
}

Tensor PossmImpl::forward_padded(const PaddedBatch& b) {
  const int64_t bn = b.unit.size(0), cn = b.unit.size(1), tn = b.unit.size(2);
  Tensor feat = encode_padded(b.unit.view({bn * cn, tn}), b.offset.view({bn * cn, tn}),
                              b.token_mask.view({bn * cn, tn}))
                    .view({bn, cn, -1});
  return decode(feat, initial_state(bn), b.session).first;
}

Possm bake_session(Possm& src, int64_t session, int64_t unit_begin, int64_t unit_count) {
  if (!src->session_emb.defined())
    throw std::invalid_argument("bake_session: the model has no session embedding");
  if (session < 0 || session >= src->options.num_sessions())
    throw std::invalid_argument("bake_session: session " + std::to_string(session) +
                                " out of range");
  if (unit_begin < 0 || unit_count <= 0 || unit_begin + unit_count > src->options.num_units())
    throw std::invalid_argument("bake_session: unit range out of range");
  PossmOptions o = src->options;
  o.num_units(unit_count).num_sessions(0);
  Possm dst(o);
  torch::NoGradGuard g;
  auto sp = src->named_parameters(true);
  for (auto& p : dst->named_parameters(true)) {
    if (p.key() == "unit_emb.weight") {
      p.value().copy_(src->unit_emb->weight.narrow(0, unit_begin, unit_count));
    } else {
      p.value().copy_(sp[p.key()]);
    }
  }
  auto sb = src->named_buffers(true);
  for (auto& b : dst->named_buffers(true)) b.value().copy_(sb[b.key()]);
  const Tensor e = src->session_emb[session];  // (F)
  if (dst->gru) {
    const auto w = dst->gru->all_weights();  // w_ih (3H, F), w_hh, b_ih, b_hh
    Tensor b_ih = w[2];
    b_ih.add_(torch::mv(w[0], e));
  } else {
    dst->s4d->in_proj->bias.add_(torch::mv(dst->s4d->in_proj->weight, e));
  }
  dst->to(src->readout->weight.device());
  return dst;
}

}  // namespace spikeflow::models
