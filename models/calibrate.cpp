// calibrate_possm: a pretrained multi-session model adapted to a new session from a short
// calibration block (unit re-identification, then optional fine-tuning of every layer), with
// an optional settings search on the calibration block's validation split.
#include <algorithm>
#include <stdexcept>

#include "models/settings_search.h"
#include "models/trainer.h"
#include "models/training_run.h"

namespace spikeflow::models {

using detail::check_sessions;
using detail::Clock;
using detail::multi_meta;
using detail::settings_line;
using detail::Trainable;
using detail::TrainingRun;
using torch::Tensor;

namespace {

/// The base checkpoint, checked against the session (throws std::invalid_argument naming it).
std::pair<Possm, PossmMeta> load_base(const std::string& path, const TrainSession& session) {
  auto [base, base_meta] = load_possm_checkpoint_full(path);
  if (base_meta.sessions.empty()) {
    throw std::invalid_argument("calibrate: '" + path +
                                "' is a single-session checkpoint; pretrain a base first");
  }
  if (base_meta.output_dim != session.train->output_dim)
    throw std::invalid_argument("calibrate: the base '" + path + "' has output_dim " +
                                std::to_string(base_meta.output_dim) + ", the session " +
                                std::to_string(session.train->output_dim));
  if (base_meta.width_ns != session.train->width_ns)
    throw std::invalid_argument("calibrate: the base '" + path + "' uses " +
                                std::to_string(base_meta.width_ns / 1000000) +
                                " ms chunks, the session's data " +
                                std::to_string(session.train->width_ns / 1000000) + " ms");
  return {base, base_meta};
}

/// The stage-1 model: everything but the embeddings from the base; the new units start as random
/// base units (embeddings of the right scale), the new session as the mean base session.
Possm initial_calibration_model(Possm& base, const PossmMeta& meta) {
  Possm model = make_possm(meta);
  torch::NoGradGuard g;
  auto bp = base->named_parameters(true);
  for (auto& p : model->named_parameters(true)) {
    if (p.key() == "unit_emb.weight" || p.key() == "session_emb") continue;
    p.value().copy_(bp[p.key()]);
  }
  auto bb = base->named_buffers(true);
  for (auto& b : model->named_buffers(true)) b.value().copy_(bb[b.key()]);
  const Tensor pick =
      torch::randint(base->options.num_units(), {model->options.num_units()}, torch::kLong);
  model->unit_emb->weight.copy_(base->unit_emb->weight.index_select(0, pick));
  model->session_emb.copy_(base->session_emb.mean(0, true));
  return model;
}

/// The stage-1 options of a calibration: reid epochs, lr x reid_lr_scale.
TrainOptions stage1_options(const CalibrateOptions& opts) {
  TrainOptions o1 = opts.train;
  o1.finetune_from.clear();
  o1.search = false;
  o1.max_epochs = opts.reid_epochs;
  o1.lr = opts.train.lr * opts.reid_lr_scale;
  return o1;
}

/// Both stages with opts.train's settings; writes checkpoint_path unless it is empty.
CalibrateResult calibrate_once(const TrainSession& session, const CalibrateOptions& opts,
                               const std::string& checkpoint_path,
                               const std::string& search_report) {
  const auto t0 = Clock::now();
  const TrainOptions o1 = stage1_options(opts);
  set_torch_threads(o1.threads);
  torch::manual_seed(o1.seed);
  auto [base, base_meta] = load_base(opts.base, session);
  CalibrateResult result;
  for (const auto& s : base_meta.sessions) result.base_sessions.push_back(s.name);
  result.base_config = base_meta.config;
  PossmMeta meta = multi_meta({session}, base_meta.config);
  meta.provenance = "calibrated from '" + opts.base + "' (" +
                    std::to_string(base_meta.sessions.size()) + " sessions) on " +
                    std::to_string(session.train->size()) + " chunks";
  if (!search_report.empty() || opts.train.ema > 0)
    meta.provenance += "; " + settings_line(opts.train) +
                       (search_report.empty() ? "" : "; " + search_report);
  result.search_report = search_report;
  Possm model = initial_calibration_model(base, meta);
  TrainingRun stage1({session}, o1, t0, meta, model, Trainable::kEmbeddings);
  result.reid = stage1.run("");
  if (opts.finetune) {
    TrainOptions o2 = o1;
    o2.max_epochs = opts.finetune_epochs;
    o2.lr = opts.train.lr * opts.finetune_lr_scale;
    Possm model2 = make_possm(meta);
    {
      torch::NoGradGuard g;
      auto sp = stage1.model()->named_parameters(true);
      for (auto& p : model2->named_parameters(true)) p.value().copy_(sp[p.key()]);
    }
    TrainingRun stage2({session}, o2, Clock::now(), meta, model2, Trainable::kAll);
    result.finetune = stage2.run("");
    result.finetune_kept = result.finetune.best_val_r2 > result.reid.best_val_r2;
    if (result.finetune_kept) {
      stage2.meta().provenance += "; stage 2 (all layers) kept";
      if (!checkpoint_path.empty())
        save_possm_checkpoint(checkpoint_path, stage2.model(), stage2.meta());
      return result;
    }
  }
  stage1.meta().provenance += "; embeddings only";
  if (!checkpoint_path.empty())
    save_possm_checkpoint(checkpoint_path, stage1.model(), stage1.meta());
  return result;
}

}  // namespace

CalibrateResult calibrate_possm(const TrainSession& session, const CalibrateOptions& opts,
                                const std::string& checkpoint_path) {
  check_sessions({session}, stage1_options(opts));
  if (!opts.train.search) return calibrate_once(session, opts, checkpoint_path, "");
  // The search: few candidates, the regularised ones first (a minute of data overfits fast);
  // its epochs count stage 1's (a trial: stage 1 for the rung's epochs, stage 2 for half).
  CalibrateOptions quiet = opts;
  quiet.train.search = false;
  quiet.train.progress = false;
  TrainOptions space = opts.train;
  space.max_epochs = opts.reid_epochs;
  space.search_candidates = std::min(4, opts.train.search_candidates);
  const auto sweep = [&](const TrainOptions& so, double lo, double hi, int steps) {
    // On the stage-1 model (embeddings only) at the stage-1 rate, reported as the base rate.
    CalibrateOptions c = quiet;
    c.train = so;
    TrainOptions o1 = stage1_options(c);
    set_torch_threads(o1.threads);
    torch::manual_seed(o1.seed);
    auto [base, base_meta] = load_base(opts.base, session);
    PossmMeta meta = multi_meta({session}, base_meta.config);
    Possm model = initial_calibration_model(base, meta);
    detail::LrCurve curve =
        TrainingRun({session}, o1, Clock::now(), meta, model, Trainable::kEmbeddings)
            .lr_sweep(lo * opts.reid_lr_scale, hi * opts.reid_lr_scale, steps);
    for (double& lr : curve.lr) lr /= opts.reid_lr_scale;
    return curve;
  };
  const auto trial = [&](const TrainOptions& to) {
    CalibrateOptions c = quiet;
    c.train = to;
    c.reid_epochs = to.max_epochs;
    c.finetune_epochs = std::max(1, to.max_epochs / 2);
    c.train.max_seconds = to.max_seconds / 2;  // each stage has its own clock
    const CalibrateResult r = calibrate_once(session, c, "", "");
    return std::max(r.reid.best_val_r2, r.finetune.epochs_run > 0 ? r.finetune.best_val_r2
                                                                  : r.reid.best_val_r2);
  };
  std::string report;
  CalibrateOptions won = opts;
  won.train = detail::choose_settings(space, sweep, trial, report, /*regularised=*/true);
  won.train.max_epochs = opts.train.max_epochs;
  if (opts.train.max_seconds > 0) won.train.max_seconds /= 2;  // each stage has its own clock
  return calibrate_once(session, won, checkpoint_path, report);
}

}  // namespace spikeflow::models
