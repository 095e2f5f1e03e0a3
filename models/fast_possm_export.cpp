#include "models/fast_possm_export.h"

#include <stdexcept>

namespace spikeflow::models {

using torch::Tensor;

namespace {

std::vector<float> to_vec(const Tensor& t) {
  const Tensor c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const float* p = c.data_ptr<float>();
  return std::vector<float>(p, p + c.numel());
}

FastLinearWeights dense(const Tensor& w, const Tensor& b) {
  FastLinearWeights l;
  l.out = static_cast<int>(w.size(0));
  l.in = static_cast<int>(w.size(1));
  l.w = to_vec(w);
  if (b.defined()) l.b = to_vec(b);
  return l;
}

FastLinearWeights dense(const torch::nn::Linear& l) { return dense(l->weight, l->bias); }

FastLayerNormWeights layer_norm(const torch::nn::LayerNorm& n) {
  if (!n->options.elementwise_affine())
    throw std::invalid_argument("fast POSSM: LayerNorm without affine parameters");
  return {to_vec(n->weight), to_vec(n->bias), static_cast<float>(n->options.eps())};
}

/// Linear -> GELU (exact) -> Linear.
std::pair<FastLinearWeights, FastLinearWeights> mlp(const torch::nn::Sequential& s) {
  const auto gelu = s->ptr<torch::nn::GELUImpl>(1);
  if (gelu->options.approximate() != "none") {
    throw std::invalid_argument("fast POSSM: GELU approximation '" + gelu->options.approximate() +
                                "' is not implemented (only the exact erf GELU)");
  }
  return {dense(torch::nn::Linear(s->ptr<torch::nn::LinearImpl>(0))),
          dense(torch::nn::Linear(s->ptr<torch::nn::LinearImpl>(2)))};
}

}  // namespace

std::string fast_possm_unsupported(const PossmMeta& meta, const RuntimeOptions& runtime) {
  if (runtime.device != "cpu")
    return "the fast path runs on the CPU only (device '" + runtime.device + "')";
  if (meta.config.backbone != "gru" && meta.config.backbone != "s4d")
    return "backbone '" + meta.config.backbone + "' is not implemented";
  return {};
}

FastPossmWeights export_fast_possm_weights(Possm& model, const PossmMeta& meta) {
  torch::NoGradGuard no_grad;
  FastPossmWeights w;
  w.config = meta.config;
  w.units = meta.units;
  w.output_dim = meta.output_dim;
  w.width_ns = meta.width_ns;
  w.target_mean = meta.target_mean;
  w.target_std = meta.target_std;

  // The attention tables, as PossmImpl::parts() builds them (models/possm.cpp).
  auto& cross = model->cross;
  auto [k, v] = cross->kv_table(model->unit_emb->weight);  // (U, Hkv, hd)
  const Tensor latent_time = model->named_buffers(false)["latent_time"];
  auto [cos, sin] = model->rotary->forward(latent_time);
  const Tensor q = cross->queries(model->latents, cos, sin);  // (L, H, hd), scaled
  const int64_t u = k.size(0), hkv = k.size(1), hd = k.size(2), l = q.size(0), h = q.size(1);
  const int64_t g = h / hkv, pn = cos.size(-1);
  const Tensor qg = q.view({1, l, hkv, g, hd});
  const Tensor kg = k.view({u, 1, hkv, 1, hd});
  const Tensor q1 = qg.narrow(-1, 0, pn), q2 = qg.narrow(-1, pn, pn),
               qr = qg.narrow(-1, 2 * pn, hd - 2 * pn);
  const Tensor k1 = kg.narrow(-1, 0, pn), k2 = kg.narrow(-1, pn, pn),
               kr = kg.narrow(-1, 2 * pn, hd - 2 * pn);
  const Tensor a = q1 * k1 + q2 * k2;
  const Tensor b = q2 * k1 - q1 * k2;
  const Tensor r = (qr * kr).sum(-1, true);
  w.score = to_vec(torch::cat({a, b, r}, -1).reshape({u, l * h, 2 * pn + 1}));
  w.value = to_vec(v);
  w.omega = to_vec(model->rotary->omega);
  w.latents = to_vec(model->latents);
  w.out = dense(cross->out_weight(cos, sin), cross->to_out->bias);
  w.norm_mlp = layer_norm(cross->norm_mlp);
  std::tie(w.mlp1, w.mlp2) = mlp(cross->mlp);

  for (const auto& m : *model->self_attn) {
    const auto* sa = m->as<LatentSelfAttention>();
    FastSelfAttentionWeights s;
    s.norm_attn = layer_norm(sa->norm_attn);
    s.norm_mlp = layer_norm(sa->norm_mlp);
    s.to_qkv = dense(sa->to_qkv);
    s.to_out = dense(sa->to_out);
    std::tie(s.mlp1, s.mlp2) = mlp(sa->mlp);
    w.self_attn.push_back(std::move(s));
  }

  if (model->gru) {
    const auto& o = model->gru->options;
    if (o.num_layers() != 1 || o.bidirectional() || !o.bias())
      throw std::invalid_argument("fast POSSM: only a single-layer, unidirectional GRU with bias");
    const auto p = model->gru->all_weights();  // w_ih, w_hh, b_ih, b_hh
    w.gru_ih = dense(p[0], p[2]);
    w.gru_hh = dense(p[1], p[3]);
  } else {
    // S4DImpl::forward's ZOH discretization, with the same ops so the floats are identical.
    auto& s4d = model->s4d;
    w.s4d_in = dense(s4d->in_proj);
    const Tensor dt = s4d->log_dt.exp().unsqueeze(-1);
    const Tensor ar = -s4d->log_a_real.exp(), ai = s4d->a_imag;
    const Tensor mag = (dt * ar).exp();
    const Tensor er = mag * (dt * ai).cos(), ei = mag * (dt * ai).sin();
    const Tensor den = ar * ar + ai * ai;
    w.s4d_er = to_vec(er);
    w.s4d_ei = to_vec(ei);
    w.s4d_br = to_vec(((er - 1) * ar + ei * ai) / den);
    w.s4d_bi = to_vec((ei * ar - (er - 1) * ai) / den);
    w.s4d_cr = to_vec(s4d->c.select(-1, 0));
    w.s4d_ci = to_vec(s4d->c.select(-1, 1));
    w.s4d_d = to_vec(s4d->d);
  }
  w.readout = dense(model->readout);
  return w;
}

std::unique_ptr<FastPossmDecoder> make_fast_possm_decoder(Possm& model, const PossmMeta& meta,
                                                          int threads) {
  return std::make_unique<FastPossmDecoder>(export_fast_possm_weights(model, meta), threads);
}

}  // namespace spikeflow::models
