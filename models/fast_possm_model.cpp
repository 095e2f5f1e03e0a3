#include "models/fast_possm_model.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "models/possm_config.h"

namespace spikeflow::models::fast_possm {
namespace {

int round8(int n) { return (n + 7) / 8 * 8; }

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

LayerNorm pack_ln(const FastLayerNormWeights& w) {
  LayerNorm l;
  l.w.assign(w.w);
  l.b.assign(w.b);
  l.eps = w.eps;
  l.n = static_cast<int>(w.w.size());
  return l;
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

/// Shapes that follow from the config and the unit map (U units, L latents, H query heads, Hkv
/// key/value heads, D = dim, hd = D / H, P = hd / 4 rotary pairs, R = rnn_hidden).
struct Shapes {
  int U, L, H, Hkv, D, hd, P, R;
  explicit Shapes(const FastPossmWeights& w)
      : U(static_cast<int>(w.units.size())),
        L(w.config.num_latents),
        H(w.config.num_heads),
        Hkv(w.config.num_kv_heads),
        D(w.config.dim),
        hd(D / H),
        P(hd / 4),
        R(w.config.rnn_hidden) {}
};

template <typename... N>
size_t sz(N... n) {
  return (static_cast<size_t>(n) * ...);
}

/// The arrays of the attention and the MLP after it.
void check_encoder(std::vector<std::string>& errors, const FastPossmWeights& w, const Shapes& s) {
  check_size(errors, "omega", w.omega, sz(s.P));
  check_size(errors, "score", w.score, sz(s.U, s.L * s.H, 2 * s.P + 1));
  check_size(errors, "value", w.value, sz(s.U, s.Hkv, s.hd));
  check_size(errors, "latents", w.latents, sz(s.L, s.D));
  check_linear(errors, "out", w.out, s.H * s.hd, s.D, true);
  check_ln(errors, "norm_mlp", w.norm_mlp, s.D);
  check_linear(errors, "mlp1", w.mlp1, s.D, w.mlp1.out, true);
  check_linear(errors, "mlp2", w.mlp2, w.mlp1.out, s.D, true);
  if (w.self_attn.size() != static_cast<size_t>(w.config.self_attn_layers)) {
    errors.push_back("self_attn: expected " + std::to_string(w.config.self_attn_layers) +
                     " layers, got " + std::to_string(w.self_attn.size()));
  }
  const int D = s.D;
  for (const auto& sa : w.self_attn) {
    check_ln(errors, "self_attn.norm_attn", sa.norm_attn, D);
    check_ln(errors, "self_attn.norm_mlp", sa.norm_mlp, D);
    check_linear(errors, "self_attn.to_qkv", sa.to_qkv, D, 3 * D, false);
    check_linear(errors, "self_attn.to_out", sa.to_out, D, D, true);
    check_linear(errors, "self_attn.mlp1", sa.mlp1, D, sa.mlp1.out, true);
    check_linear(errors, "self_attn.mlp2", sa.mlp2, sa.mlp1.out, D, true);
  }
}

/// The recurrent backbone (GRU or S4D) and the readout.
void check_backbone(std::vector<std::string>& errors, const FastPossmWeights& w, const Shapes& s) {
  const int L = s.L, D = s.D, R = s.R;
  if (w.config.backbone == "gru") {
    check_linear(errors, "gru_ih", w.gru_ih, L * D, 3 * R, true);
    check_linear(errors, "gru_hh", w.gru_hh, R, 3 * R, true);
  } else {
    check_linear(errors, "s4d_in", w.s4d_in, L * D, R, true);
    for (const auto* v : {&w.s4d_er, &w.s4d_ei, &w.s4d_br, &w.s4d_bi, &w.s4d_cr, &w.s4d_ci})
      check_size(errors, "s4d coefficients", *v, sz(R, kS4dModes));
    check_size(errors, "s4d_d", w.s4d_d, sz(R));
  }
  check_linear(errors, "readout", w.readout, R, w.output_dim, true);
}

// ---------------------------------------------------------------- packing

/// (R, 16) row-major -> (16, R).
void pack_modes(Buf& dst, const std::vector<float>& src, int channels) {
  dst.resize(static_cast<size_t>(channels) * kS4dModes);
  for (int c = 0; c < channels; ++c)
    for (int k = 0; k < kS4dModes; ++k)
      dst[static_cast<size_t>(k) * channels + c] = src[static_cast<size_t>(c) * kS4dModes + k];
}

/// Shapes, rotary frequencies, latents and the per-unit rows [score | value].
void pack_attention(Model& m, const FastPossmWeights& w, const Shapes& s) {
  const int U = s.U, L = s.L, H = s.H, Hkv = s.Hkv, D = s.D, hd = s.hd, P = s.P;
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
  m.hidden = s.R;
  m.features = L * D;
  m.output_dim = w.output_dim;
  m.gru = w.config.backbone == "gru";
  m.omega.assign(w.omega);
  for (float om : w.omega) m.max_omega = std::max(m.max_omega, std::abs(om));
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
  m.latents.assign(w.latents);
}

/// The dense layers, LayerNorms, backbone coefficients and target normalization.
void pack_layers(Model& m, const FastPossmWeights& w, const Shapes& s) {
  m.out = pack_linear(w.out);
  m.mlp1 = pack_linear(w.mlp1);
  m.mlp2 = pack_linear(w.mlp2);
  m.norm_mlp = pack_ln(w.norm_mlp);
  for (const auto& sa : w.self_attn) {
    m.self_attn.push_back({pack_ln(sa.norm_attn), pack_ln(sa.norm_mlp), pack_linear(sa.to_qkv),
                           pack_linear(sa.to_out), pack_linear(sa.mlp1), pack_linear(sa.mlp2)});
  }
  if (m.gru) {
    m.gru_ih = pack_linear(w.gru_ih);
    m.gru_hh = pack_linear(w.gru_hh);
  } else {
    m.s4d_in = pack_linear(w.s4d_in);
    pack_modes(m.s4d_er, w.s4d_er, s.R);
    pack_modes(m.s4d_ei, w.s4d_ei, s.R);
    pack_modes(m.s4d_br, w.s4d_br, s.R);
    pack_modes(m.s4d_bi, w.s4d_bi, s.R);
    pack_modes(m.s4d_cr, w.s4d_cr, s.R);
    pack_modes(m.s4d_ci, w.s4d_ci, s.R);
    m.s4d_d.assign(w.s4d_d);
  }
  m.readout = pack_linear(w.readout);
  m.target_mean.assign(w.target_mean);
  m.target_std.assign(w.target_std);
}

/// The recurrent state and the work buffers, each padded to whole vectors (Buf rounds up to 16
/// floats).
void allocate_work(Model& m, const FastPossmWeights& w, const Shapes& s, size_t token_capacity) {
  const int L = s.L, H = s.H, D = s.D, hd = s.hd, R = s.R;
  int widest = std::max({w.mlp1.out, 3 * D, 8});
  for (const auto& sa : w.self_attn) widest = std::max(widest, sa.mlp1.out);
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
  m.reserve_tokens(token_capacity);
}

}  // namespace

void check_weights(const FastPossmWeights& w) {
  validate_possm_config(w.config);
  const Shapes s(w);
  std::vector<std::string> errors;
  if (s.U <= 0) errors.push_back("the unit map is empty");
  if (w.output_dim <= 0) errors.push_back("output_dim must be > 0");
  if (w.width_ns <= 0) errors.push_back("width_ns must be > 0");
  check_size(errors, "target_mean", w.target_mean, sz(w.output_dim));
  check_size(errors, "target_std", w.target_std, sz(w.output_dim));
  check_encoder(errors, w, s);
  check_backbone(errors, w, s);
  if (!errors.empty()) {
    std::string msg = "FastPossmDecoder: bad weights:";
    for (const auto& e : errors) msg += "\n  - " + e;
    throw std::invalid_argument(msg);
  }
}

void pack_model(Model& m, const FastPossmWeights& w, size_t token_capacity) {
  const Shapes s(w);
  pack_attention(m, w, s);
  pack_layers(m, w, s);
  allocate_work(m, w, s, token_capacity);
}

}  // namespace spikeflow::models::fast_possm
