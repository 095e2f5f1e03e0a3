#include "models/possm_decoder.h"

#include <cstring>
#include <sstream>
#include <stdexcept>

#include "models/checkpoint_file.h"

namespace spikeflow::models {

using torch::Tensor;

namespace {

std::runtime_error ck_error(const std::string& path, const std::string& what) {
  return std::runtime_error("checkpoint '" + path + "': " + what);
}

std::string first_line(const std::string& s) {
  const auto p = s.find('\n');
  return p == std::string::npos ? s : s.substr(0, p);
}

std::string shape_str(const Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

void write_meta(CheckpointFile& ck, const PossmMeta& m) {
  const PossmConfig& c = m.config;
  ck.set_int("config.dim", c.dim);
  ck.set_int("config.num_latents", c.num_latents);
  ck.set_int("config.num_heads", c.num_heads);
  ck.set_int("config.num_kv_heads", c.num_kv_heads);
  ck.set_int("config.self_attn_layers", c.self_attn_layers);
  ck.set_string("config.backbone", c.backbone);
  ck.set_int("config.rnn_hidden", c.rnn_hidden);
  ck.set_double("config.rope_min_period_s", c.rope_min_period_s);
  ck.set_double("config.rope_max_period_s", c.rope_max_period_s);
  ck.set_units("units", m.units);
  ck.set_int("output_dim", m.output_dim);
  ck.set_strings("output_names", m.output_names);
  ck.set_int("width_ns", m.width_ns);
  ck.set_floats("target_mean", m.target_mean);
  ck.set_floats("target_std", m.target_std);
  if (!m.provenance.empty()) ck.set_string("provenance", m.provenance);
  if (m.sessions.empty()) return;
  ck.set_int("sessions.count", static_cast<int64_t>(m.sessions.size()));
  ck.set_int("sessions.default", m.default_session);
  for (size_t i = 0; i < m.sessions.size(); ++i) {
    const std::string k = "session." + std::to_string(i) + ".";
    ck.set_string(k + "name", m.sessions[i].name);
    ck.set_int(k + "unit_begin", m.sessions[i].unit_begin);
    ck.set_int(k + "unit_count", m.sessions[i].unit_count);
    ck.set_floats(k + "target_mean", m.sessions[i].target_mean);
    ck.set_floats(k + "target_std", m.sessions[i].target_std);
  }
}

void read_sessions(const CheckpointFile& ck, PossmMeta& m) {
  const int64_t n = ck.get_int("sessions.count");
  if (n < 1 || n > 100000) throw std::runtime_error("sessions.count must be in [1, 100000]");
  m.default_session = static_cast<int>(ck.get_int("sessions.default"));
  if (m.default_session < 0 || m.default_session >= n)
    throw std::runtime_error("sessions.default is out of range");
  int64_t next = 0;
  for (int64_t i = 0; i < n; ++i) {
    const std::string k = "session." + std::to_string(i) + ".";
    PossmSession s;
    s.name = ck.get_string(k + "name");
    s.unit_begin = ck.get_int(k + "unit_begin");
    s.unit_count = ck.get_int(k + "unit_count");
    s.target_mean = ck.get_floats(k + "target_mean");
    s.target_std = ck.get_floats(k + "target_std");
    if (s.unit_begin != next || s.unit_count < 1)
      throw std::runtime_error(k + "unit_begin/unit_count do not tile the unit map");
    next += s.unit_count;
    if (s.target_mean.size() != static_cast<size_t>(m.output_dim) ||
        s.target_std.size() != static_cast<size_t>(m.output_dim))
      throw std::runtime_error(k + "target normalization has the wrong size");
    m.sessions.push_back(std::move(s));
  }
  if (next != static_cast<int64_t>(m.units.size()))
    throw std::runtime_error("the sessions cover " + std::to_string(next) +
                             " units, the unit map has " + std::to_string(m.units.size()));
}

PossmMeta read_meta(const CheckpointFile& ck) {
  PossmMeta m;
  PossmConfig& c = m.config;
  c.dim = static_cast<int>(ck.get_int("config.dim"));
  c.num_latents = static_cast<int>(ck.get_int("config.num_latents"));
  c.num_heads = static_cast<int>(ck.get_int("config.num_heads"));
  c.num_kv_heads = static_cast<int>(ck.get_int("config.num_kv_heads"));
  c.self_attn_layers = static_cast<int>(ck.get_int("config.self_attn_layers"));
  c.backbone = ck.get_string("config.backbone");
  c.rnn_hidden = static_cast<int>(ck.get_int("config.rnn_hidden"));
  c.rope_min_period_s = ck.get_double("config.rope_min_period_s");
  c.rope_max_period_s = ck.get_double("config.rope_max_period_s");
  m.units = ck.get_units("units");
  m.output_dim = static_cast<int>(ck.get_int("output_dim"));
  m.output_names = ck.get_strings("output_names");
  m.width_ns = ck.get_int("width_ns");
  m.target_mean = ck.get_floats("target_mean");
  m.target_std = ck.get_floats("target_std");
  if (m.units.empty()) throw std::runtime_error("the unit map is empty");
  if (m.output_dim <= 0) throw std::runtime_error("output_dim must be > 0");
  if (m.width_ns <= 0) throw std::runtime_error("width_ns must be > 0");
  if (m.target_mean.size() != static_cast<size_t>(m.output_dim) ||
      m.target_std.size() != static_cast<size_t>(m.output_dim)) {
    throw std::runtime_error("target normalization has " + std::to_string(m.target_mean.size()) +
                             "/" + std::to_string(m.target_std.size()) + " values for output_dim " +
                             std::to_string(m.output_dim));
  }
  if (ck.meta.count("provenance")) m.provenance = ck.get_string("provenance");
  if (ck.kind_version == kPossmMultiKindVersion) read_sessions(ck, m);
  return m;
}

}  // namespace

Possm make_possm(const PossmMeta& meta) {
  return Possm(PossmOptions(static_cast<int64_t>(meta.units.size()), meta.output_dim)
                   .width_s(static_cast<double>(meta.width_ns) * 1e-9)
                   .config(meta.config)
                   .num_sessions(static_cast<int64_t>(meta.sessions.size())));
}

std::pair<Possm, PossmMeta> session_view(Possm& model, const PossmMeta& meta, int s) {
  if (meta.sessions.empty()) return {model, meta};
  if (s < 0 || s >= static_cast<int>(meta.sessions.size()))
    throw std::invalid_argument("session_view: no session " + std::to_string(s));
  const PossmSession& ss = meta.sessions[static_cast<size_t>(s)];
  PossmMeta v = meta;
  v.sessions.clear();
  v.default_session = 0;
  v.units.assign(meta.units.begin() + ss.unit_begin,
                 meta.units.begin() + ss.unit_begin + ss.unit_count);
  v.target_mean = ss.target_mean;
  v.target_std = ss.target_std;
  if (!v.provenance.empty()) v.provenance += "; ";
  v.provenance += "session '" + ss.name + "' of a multi-session model";
  return {bake_session(model, s, ss.unit_begin, ss.unit_count), std::move(v)};
}

void save_possm_checkpoint(const std::string& path, Possm& model, const PossmMeta& meta) {
  CheckpointFile ck;
  ck.kind = kPossmKind;
  ck.kind_version = meta.sessions.empty() ? kPossmKindVersion : kPossmMultiKindVersion;
  write_meta(ck, meta);
  torch::serialize::OutputArchive archive;
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : model->named_parameters(true))
      archive.write(p.key(), p.value().detach().cpu());
    for (const auto& b : model->named_buffers(true))
      archive.write(b.key(), b.value().cpu(), /*is_buffer=*/true);
  }
  std::ostringstream os;
  try {
    archive.save_to(os);
  } catch (const c10::Error& e) {
    throw ck_error(path, "cannot serialize the weights: " + first_line(e.what()));
  }
  ck.payload = os.str();
  ck.write(path);
}

std::pair<Possm, PossmMeta> load_possm_checkpoint(const std::string& path) {
  auto [model, meta] = load_possm_checkpoint_full(path);
  if (meta.sessions.empty()) return {model, meta};
  try {
    return session_view(model, meta, meta.default_session);
  } catch (const std::exception& e) {
    throw ck_error(path, e.what());
  }
}

std::pair<Possm, PossmMeta> load_possm_checkpoint_full(const std::string& path) {
  CheckpointFile ck = CheckpointFile::read(path);
  if (ck.kind != kPossmKind)
    throw ck_error(path, "kind is '" + ck.kind + "', expected '" + kPossmKind + "'");
  if (ck.kind_version != kPossmKindVersion && ck.kind_version != kPossmMultiKindVersion) {
    throw ck_error(path, "POSSM format version " + std::to_string(ck.kind_version) +
                             " is not supported (expected " + std::to_string(kPossmKindVersion) +
                             " or " + std::to_string(kPossmMultiKindVersion) + ")");
  }
  PossmMeta meta;
  try {
    meta = read_meta(ck);
  } catch (const std::exception& e) {
    throw ck_error(path, std::string("bad metadata: ") + e.what());
  }
  Possm model{nullptr};
  try {
    model = make_possm(meta);
  } catch (const std::exception& e) {
    throw ck_error(path, std::string("bad model config: ") + e.what());
  }
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(ck.payload.data(), ck.payload.size());
  } catch (const c10::Error& e) {
    throw ck_error(path, "corrupt weights payload: " + first_line(e.what()));
  }
  torch::NoGradGuard no_grad;
  auto load = [&](const std::string& name, Tensor& dst, bool is_buffer) {
    Tensor src;
    bool found = false;
    try {
      found = archive.try_read(name, src, is_buffer);
    } catch (const c10::Error& e) {
      throw ck_error(path, "cannot read tensor '" + name + "': " + first_line(e.what()));
    }
    if (!found) throw ck_error(path, "weights lack tensor '" + name + "'");
    if (src.sizes() != dst.sizes()) {
      throw ck_error(path, "tensor '" + name + "' has shape " + shape_str(src) +
                               " but the config expects " + shape_str(dst));
    }
    if (src.scalar_type() != dst.scalar_type())
      throw ck_error(path, "tensor '" + name + "' has the wrong dtype");
    dst.copy_(src);
  };
  for (auto& p : model->named_parameters(true)) load(p.key(), p.value(), false);
  for (auto& b : model->named_buffers(true)) load(b.key(), b.value(), true);
  return {model, meta};
}

torch::Device resolve_device(const RuntimeOptions& runtime) {
  if (runtime.threads < 1) {
    throw std::runtime_error("runtime: threads must be >= 1 (got " +
                             std::to_string(runtime.threads) + ")");
  }
  if (runtime.device == "cpu") return torch::Device(torch::kCPU);
  if (runtime.device == "cuda") {
    if (!torch::cuda::is_available()) {
      throw std::runtime_error(
          "device 'cuda' requested but this LibTorch build has no CUDA support / no GPU visible; "
          "use device 'cpu'");
    }
    return torch::Device(torch::kCUDA, 0);
  }
  throw std::runtime_error("unknown device '" + runtime.device + "' (expected 'cpu' or 'cuda')");
}

// ---------------------------------------------------------------- PossmDecoder

PossmDecoder::PossmDecoder(Possm model, PossmMeta meta, const RuntimeOptions& runtime)
    : model_(std::move(model)), meta_(std::move(meta)), device_(resolve_device(runtime)) {
  set_torch_threads(runtime.threads);
  model_->to(device_);
  model_->eval();
  model_->freeze_for_inference();
  const PossmConfig& c = meta_.config;
  describe_ = "possm-torch d" + std::to_string(c.dim) + " " + c.backbone +
              std::to_string(c.rnn_hidden) + " " + runtime.device + " t" +
              std::to_string(runtime.threads);
  reset();
}

void PossmDecoder::reset() {
  c10::InferenceMode guard;
  state_ = model_->initial_state(1);
}

void PossmDecoder::check_units(const core::TokenChunk& chunk) const {
  const auto n_units = static_cast<int32_t>(meta_.units.size());
  if (chunk.unit.size() != chunk.offset_s.size()) {
    throw std::invalid_argument("PossmDecoder: chunk " + std::to_string(chunk.seq) + " has " +
                                std::to_string(chunk.unit.size()) + " units but " +
                                std::to_string(chunk.offset_s.size()) + " offsets");
  }
  for (int32_t u : chunk.unit) {
    if (u < 0 || u >= n_units) {
      throw std::out_of_range("PossmDecoder: chunk " + std::to_string(chunk.seq) +
                              " has unit index " + std::to_string(u) + " outside [0, " +
                              std::to_string(n_units) + ")");
    }
  }
}

void PossmDecoder::write_output(const Tensor& y, std::span<float> out) {
  Tensor c = y.to(torch::kCPU).contiguous();
  const float* p = c.data_ptr<float>();
  const auto d = static_cast<size_t>(meta_.output_dim);
  const size_t n = static_cast<size_t>(c.numel()) / d;
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < d; ++j)
      out[i * d + j] = p[i * d + j] * meta_.target_std[j] + meta_.target_mean[j];
  }
}

void PossmDecoder::step(const core::TokenChunk& chunk, std::span<float> out) {
  if (out.size() < static_cast<size_t>(meta_.output_dim))
    throw std::invalid_argument("PossmDecoder::step: out too small");
  check_units(chunk);
  c10::InferenceMode guard;
  const auto n = static_cast<int64_t>(chunk.size());
  // Zero-copy views of the chunk's token arrays (int32 indices are accepted by index_select).
  Tensor unit = torch::from_blob(const_cast<int32_t*>(chunk.unit.data()), {n}, torch::kInt);
  Tensor off = torch::from_blob(const_cast<float*>(chunk.offset_s.data()), {n}, torch::kFloat);
  if (!device_.is_cpu()) {
    unit = unit.to(device_);
    off = off.to(device_);
  }
  Tensor feat = model_->encode_one(unit, off);
  auto [y, st] = model_->decode(feat.view({1, 1, -1}), state_);
  state_ = st;
  write_output(y, out);
}

void PossmDecoder::step_many(std::span<const core::TokenChunk* const> chunks,
                             std::span<float> out) {
  const auto n = static_cast<int64_t>(chunks.size());
  if (out.size() < chunks.size() * static_cast<size_t>(meta_.output_dim)) {
    throw std::invalid_argument("PossmDecoder::step_many: out too small");
  }
  if (n == 0) return;
  if (n == 1) return step(*chunks[0], out);
  unit_buf_.clear();
  seg_buf_.clear();
  off_buf_.clear();
  for (int64_t s = 0; s < n; ++s) {
    const auto& ch = *chunks[static_cast<size_t>(s)];
    check_units(ch);
    unit_buf_.insert(unit_buf_.end(), ch.unit.begin(), ch.unit.end());
    off_buf_.insert(off_buf_.end(), ch.offset_s.begin(), ch.offset_s.end());
    seg_buf_.insert(seg_buf_.end(), ch.size(), s);
  }
  c10::InferenceMode guard;
  const auto m = static_cast<int64_t>(unit_buf_.size());
  Tensor unit = torch::from_blob(unit_buf_.data(), {m}, torch::kLong);
  Tensor off = torch::from_blob(off_buf_.data(), {m}, torch::kFloat);
  Tensor seg = torch::from_blob(seg_buf_.data(), {m}, torch::kLong);
  if (!device_.is_cpu()) {
    unit = unit.to(device_);
    off = off.to(device_);
    seg = seg.to(device_);
  }
  // Batched through embedding and attention, then the backbone runs over the n chunks in order.
  Tensor feat = model_->encode_packed(unit, off, seg, n);
  auto [y, st] = model_->decode(feat.view({1, n, -1}), state_);
  state_ = st;
  write_output(y, out);
}

}  // namespace spikeflow::models
