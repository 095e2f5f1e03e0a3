#include "models/trainer.h"

#include <cstdio>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "models/checkpoint_file.h"
#include "models/settings_search.h"
#include "models/training_run.h"

namespace spikeflow::models {

using detail::check_inputs;
using detail::check_sessions;
using detail::choose_settings;
using detail::Clock;
using detail::multi_meta;
using detail::settings_line;
using detail::Trainable;
using detail::training_meta;
using detail::TrainingRun;
using torch::Tensor;

namespace {

/// Copies what the fine-tuning source knows into model: every tensor except the unit embedding
/// as is, and the embedding rows of units both maps share.
void transfer_weights(Possm& src, const PossmMeta& src_meta, Possm& dst,
                      const std::vector<core::UnitKey>& dst_units) {
  torch::NoGradGuard g;
  auto src_params = src->named_parameters(true);
  for (auto& p : dst->named_parameters(true)) {
    if (p.key() == "unit_emb.weight") continue;
    p.value().copy_(src_params[p.key()]);
  }
  auto src_bufs = src->named_buffers(true);
  for (auto& b : dst->named_buffers(true)) b.value().copy_(src_bufs[b.key()]);
  for (size_t i = 0; i < dst_units.size(); ++i) {
    for (size_t j = 0; j < src_meta.units.size(); ++j) {
      if (src_meta.units[j] == dst_units[i]) {
        dst->unit_emb->weight[static_cast<int64_t>(i)].copy_(
            src->unit_emb->weight[static_cast<int64_t>(j)]);
        break;
      }
    }
  }
}

/// A fresh model shaped by meta or, when fine-tuning, one that starts from the source checkpoint
/// (whose config then replaces meta.config).
Possm initial_model(const TrainOptions& opts, PossmMeta& meta) {
  if (opts.finetune_from.empty()) return make_possm(meta);
  auto [src, src_meta] = load_possm_checkpoint(opts.finetune_from);
  if (src_meta.output_dim != meta.output_dim) {
    throw std::invalid_argument("train_possm: fine-tuning source '" + opts.finetune_from +
                                "' has output_dim " + std::to_string(src_meta.output_dim) +
                                ", the dataset " + std::to_string(meta.output_dim));
  }
  meta.config = src_meta.config;
  Possm model = make_possm(meta);
  transfer_weights(src, src_meta, model, meta.units);
  return model;
}

}  // namespace

TrainResult train_possm(const core::DecodingDataset& train, const core::DecodingDataset& val,
                        const TrainOptions& opts, const std::string& checkpoint_path) {
  auto t0 = Clock::now();
  check_inputs(train, val, opts);
  const std::vector<TrainSession> session{{"session", &train, &val}};
  // Seeded before the model is built: its initial weights come from torch's generator.
  auto fresh = [&](const TrainOptions& o, PossmMeta& meta) {
    set_torch_threads(o.threads);
    torch::manual_seed(o.seed);
    meta = training_meta(train, o);
    return initial_model(o, meta);
  };
  std::string report;
  TrainOptions o = opts;
  if (opts.search) {
    const auto sweep = [&](const TrainOptions& so, double lo, double hi, int steps) {
      PossmMeta meta;
      Possm model = fresh(so, meta);
      return TrainingRun(session, so, Clock::now(), std::move(meta), model, Trainable::kAll)
          .lr_sweep(lo, hi, steps);
    };
    const auto trial = [&](const TrainOptions& to) {
      return train_possm(train, val, to, "").best_val_r2;
    };
    o = choose_settings(opts, sweep, trial, report);
    t0 = Clock::now();  // o.max_seconds is what the search left
  }
  PossmMeta meta;
  Possm model = fresh(o, meta);
  if (!report.empty() || o.ema > 0)
    meta.provenance = "trained with " + settings_line(o) + (report.empty() ? "" : "; " + report);
  TrainResult r =
      TrainingRun(session, o, t0, std::move(meta), model, Trainable::kAll).run(checkpoint_path);
  r.search_report = report;
  return r;
}

PretrainResult pretrain_possm(const std::vector<TrainSession>& sessions,
                              const PretrainOptions& opts, const std::string& checkpoint_path) {
  auto t0 = Clock::now();
  TrainOptions topts = opts.train;
  topts.finetune_from.clear();
  check_sessions(sessions, topts);
  std::string report;
  if (topts.search && opts.dist.world_size > 1)
    throw std::invalid_argument(
        "pretrain: the settings search runs on one rank (drop --search or the ranks)");
  if (topts.search) {
    const auto sweep = [&](const TrainOptions& so, double lo, double hi, int steps) {
      set_torch_threads(so.threads);
      torch::manual_seed(so.seed);
      PossmMeta meta = multi_meta(sessions, so.model);
      Possm model = make_possm(meta);
      return TrainingRun(sessions, so, Clock::now(), std::move(meta), model, Trainable::kAll)
          .lr_sweep(lo, hi, steps);
    };
    const auto trial = [&](const TrainOptions& o) {
      return pretrain_possm(sessions, PretrainOptions{o, "", 0, {}}, "").best_val_r2;
    };
    topts = choose_settings(topts, sweep, trial, report);
    t0 = Clock::now();  // topts.max_seconds is what the search left
  }
  if (opts.dist.world_size > 1) validate_dist_options(opts.dist);
  set_torch_threads(topts.threads);
  PossmMeta meta = multi_meta(sessions, topts.model);
  std::string names;
  for (const auto& s : sessions) names += (names.empty() ? "" : ", ") + s.name;
  meta.provenance = "pretrained on " + std::to_string(sessions.size()) + " sessions (" + names +
                    "); " + settings_line(topts) + (report.empty() ? "" : "; " + report);
  Possm model{nullptr};
  {
    // torch's generator is process-global: seed and build under a lock, so ranks run as threads
    // of one process (tests) start from the seed's weights as one rank does.
    static std::mutex init_mutex;
    std::lock_guard lock(init_mutex);
    torch::manual_seed(topts.seed);
    model = make_possm(meta);
  }
  TrainingRun run(sessions, topts, t0, std::move(meta), model, Trainable::kAll, &opts.dist);
  PretrainResult r;
  static_cast<TrainResult&>(r) = run.run(checkpoint_path, opts.resume_path, opts.stop_after_epochs);
  r.session_val_r2 = run.best_session_r2();
  r.interrupted = run.interrupted();
  r.resumed_from_epoch = run.resumed_from();
  r.windows_per_s = run.windows_per_s();
  r.search_report = report;
  if (!r.interrupted && !opts.resume_path.empty() && opts.dist.rank == 0)
    std::remove(opts.resume_path.c_str());
  return r;
}

std::string describe_possm_checkpoint(const std::string& path) {
  CheckpointFile ck = CheckpointFile::read(path);
  if (ck.kind != kPossmKind) return "checkpoint '" + path + "': kind " + ck.kind + "\n";
  std::ostringstream os;
  auto [model, meta] = load_possm_checkpoint_full(path);
  const PossmConfig& c = meta.config;
  os << "checkpoint '" << path << "': POSSM format " << ck.kind_version << ", d" << c.dim << " "
     << c.backbone << c.rnn_hidden << ", " << meta.width_ns / 1000000 << " ms chunks, "
     << meta.units.size() << " units, outputs";
  for (const auto& n : meta.output_names) os << " " << n;
  os << "\n";
  if (meta.sessions.empty()) os << "  one session (no session embedding)\n";
  for (size_t i = 0; i < meta.sessions.size(); ++i) {
    const auto& s = meta.sessions[i];
    os << "  session " << i << ": " << s.name << " (" << s.unit_count << " units)"
       << (static_cast<int>(i) == meta.default_session ? "  [default]" : "") << "\n";
  }
  if (!meta.provenance.empty()) os << "  provenance: " << meta.provenance << "\n";
  return os.str();
}

std::unique_ptr<StreamingDecoder> make_untrained_possm(const PossmConfig& config,
                                                       std::vector<core::UnitKey> units,
                                                       int output_dim, int64_t width_ns,
                                                       const RuntimeOptions& runtime,
                                                       uint64_t seed) {
  PossmMeta meta;
  meta.config = config;
  meta.units = std::move(units);
  meta.output_dim = output_dim;
  meta.width_ns = width_ns;
  meta.target_mean.assign(static_cast<size_t>(output_dim), 0.f);
  meta.target_std.assign(static_cast<size_t>(output_dim), 1.f);
  torch::manual_seed(seed);
  Possm model = make_possm(meta);
  return std::make_unique<PossmDecoder>(model, std::move(meta), runtime);
}

void save_untrained_possm(const std::string& checkpoint_path, const PossmConfig& config,
                          std::vector<core::UnitKey> units, int output_dim, int64_t width_ns,
                          uint64_t seed) {
  PossmMeta meta;
  meta.config = config;
  meta.units = std::move(units);
  meta.output_dim = output_dim;
  meta.width_ns = width_ns;
  meta.target_mean.assign(static_cast<size_t>(output_dim), 0.f);
  meta.target_std.assign(static_cast<size_t>(output_dim), 1.f);
  for (int i = 0; i < output_dim; ++i) {
    std::string name = std::to_string(i);
    name.insert(name.begin(), 'y');
    meta.output_names.push_back(std::move(name));
  }
  torch::manual_seed(seed);
  Possm model = make_possm(meta);
  save_possm_checkpoint(checkpoint_path, model, meta);
}

}  // namespace spikeflow::models
