// calibrate_possm: a pretrained multi-session model adapted to a new session from a short
// calibration block (unit re-identification, then optional fine-tuning of every layer).
#include <stdexcept>

#include "models/trainer.h"
#include "models/training_run.h"

namespace spikeflow::models {

using detail::check_sessions;
using detail::Clock;
using detail::multi_meta;
using detail::Trainable;
using detail::TrainingRun;
using torch::Tensor;

CalibrateResult calibrate_possm(const TrainSession& session, const CalibrateOptions& opts,
                                const std::string& checkpoint_path) {
  const auto t0 = Clock::now();
  TrainOptions o1 = opts.train;
  o1.finetune_from.clear();
  o1.max_epochs = opts.reid_epochs;
  o1.lr = opts.train.lr * opts.reid_lr_scale;
  check_sessions({session}, o1);
  set_torch_threads(o1.threads);
  torch::manual_seed(o1.seed);
  auto [base, base_meta] = load_possm_checkpoint_full(opts.base);
  if (base_meta.sessions.empty()) {
    throw std::invalid_argument("calibrate: '" + opts.base +
                                "' is a single-session checkpoint; pretrain a base first");
  }
  if (base_meta.output_dim != session.train->output_dim)
    throw std::invalid_argument("calibrate: the base '" + opts.base + "' has output_dim " +
                                std::to_string(base_meta.output_dim) + ", the session " +
                                std::to_string(session.train->output_dim));
  if (base_meta.width_ns != session.train->width_ns)
    throw std::invalid_argument("calibrate: the base '" + opts.base + "' uses " +
                                std::to_string(base_meta.width_ns / 1000000) +
                                " ms chunks, the session's data " +
                                std::to_string(session.train->width_ns / 1000000) + " ms");
  CalibrateResult result;
  for (const auto& s : base_meta.sessions) result.base_sessions.push_back(s.name);
  result.base_config = base_meta.config;
  PossmMeta meta = multi_meta({session}, base_meta.config);
  meta.provenance = "calibrated from '" + opts.base + "' (" +
                    std::to_string(base_meta.sessions.size()) + " sessions) on " +
                    std::to_string(session.train->size()) + " chunks";
  Possm model = make_possm(meta);
  {
    // Everything but the embeddings from the base; the new units start as random base units
    // (embeddings of the right scale), the new session as the mean base session.
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
  }
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
      save_possm_checkpoint(checkpoint_path, stage2.model(), stage2.meta());
      return result;
    }
  }
  stage1.meta().provenance += "; embeddings only";
  save_possm_checkpoint(checkpoint_path, stage1.model(), stage1.meta());
  return result;
}

}  // namespace spikeflow::models
