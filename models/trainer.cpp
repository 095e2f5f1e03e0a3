#include "models/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>

#include "core/r2.h"
#include "models/possm_decoder.h"

namespace spikeflow::models {

using torch::Tensor;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void check_dataset(const core::DecodingDataset& d, const std::string& name) {
  if (d.chunks.empty())
    throw std::invalid_argument("train_possm: the " + name + " dataset has no chunks");
  if (d.units.empty())
    throw std::invalid_argument("train_possm: the " + name + " dataset has no units");
  if (d.output_dim <= 0)
    throw std::invalid_argument("train_possm: the " + name + " dataset has output_dim <= 0");
  if (d.targets.size() != d.chunks.size() * static_cast<size_t>(d.output_dim)) {
    throw std::invalid_argument("train_possm: the " + name + " dataset has " +
                                std::to_string(d.targets.size()) + " target values for " +
                                std::to_string(d.chunks.size()) + " chunks × " +
                                std::to_string(d.output_dim) + " dims");
  }
  const auto n_units = static_cast<int32_t>(d.units.size());
  for (const auto& ch : d.chunks) {
    if (ch.unit.size() != ch.offset_s.size()) {
      throw std::invalid_argument("train_possm: " + name + " chunk " + std::to_string(ch.seq) +
                                  " has mismatched unit/offset arrays");
    }
    for (int32_t u : ch.unit) {
      if (u < 0 || u >= n_units) {
        throw std::invalid_argument("train_possm: " + name + " chunk " + std::to_string(ch.seq) +
                                    " has unit " + std::to_string(u) + " outside [0, " +
                                    std::to_string(n_units) + ")");
      }
    }
  }
  for (float t : d.targets) {
    if (!std::isfinite(t))
      throw std::invalid_argument("train_possm: the " + name + " dataset has non-finite targets");
  }
}

void check_options(const TrainOptions& o) {
  std::vector<std::string> errors;
  if (o.max_epochs < 1) errors.push_back("max_epochs must be >= 1");
  if (o.batch_size < 1) errors.push_back("batch_size must be >= 1");
  if (o.window_chunks < 1) errors.push_back("window_chunks must be >= 1");
  if (!(o.lr > 0)) errors.push_back("lr must be > 0");
  if (!(o.weight_decay >= 0)) errors.push_back("weight_decay must be >= 0");
  if (!(o.unit_dropout >= 0 && o.unit_dropout < 1))
    errors.push_back("unit_dropout must be in [0, 1)");
  if (o.patience < 1) errors.push_back("patience must be >= 1");
  if (o.threads < 1) errors.push_back("threads must be >= 1");
  if (!(o.max_seconds >= 0)) errors.push_back("max_seconds must be >= 0");
  if (o.finetune_frozen_epochs < 0) errors.push_back("finetune_frozen_epochs must be >= 0");
  if (!errors.empty()) {
    std::string msg = "train_possm: invalid options:";
    for (const auto& e : errors) msg += "\n  - " + e;
    throw std::invalid_argument(msg);
  }
}

/// Runs of consecutive chunks [begin, end): seq increases by exactly 1 inside a run.
std::vector<std::pair<size_t, size_t>> consecutive_runs(const core::DecodingDataset& d) {
  std::vector<std::pair<size_t, size_t>> runs;
  size_t begin = 0;
  for (size_t i = 1; i <= d.chunks.size(); ++i) {
    if (i == d.chunks.size() || d.chunks[i].seq != d.chunks[i - 1].seq + 1) {
      runs.emplace_back(begin, i);
      begin = i;
    }
  }
  return runs;
}

/// Window starts for one epoch: stride window/2 from a random phase, inside each run; windows
/// shorter than 2 chunks (or the whole run when it is shorter) are dropped.
std::vector<std::pair<size_t, size_t>> epoch_windows(
    const std::vector<std::pair<size_t, size_t>>& runs, int window, std::mt19937_64& rng) {
  const size_t w = static_cast<size_t>(window);
  const size_t stride = std::max<size_t>(1, w / 2);
  std::vector<std::pair<size_t, size_t>> out;
  for (const auto& [b, e] : runs) {
    const size_t phase = std::uniform_int_distribution<size_t>(0, stride - 1)(rng);
    for (size_t s = b + (e - b > w ? phase : 0); s < e; s += stride) {
      const size_t end = std::min(e, s + w);
      if (end - s >= std::min<size_t>(2, w)) out.emplace_back(s, end);
      if (end == e) break;
    }
  }
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

struct Snapshot {
  std::vector<Tensor> tensors;
};

Snapshot snapshot(Possm& model) {
  torch::NoGradGuard g;
  Snapshot s;
  for (const auto& p : model->parameters(true)) s.tensors.push_back(p.detach().clone());
  for (const auto& b : model->buffers(true)) s.tensors.push_back(b.clone());
  return s;
}

void restore(Possm& model, const Snapshot& s) {
  torch::NoGradGuard g;
  size_t i = 0;
  for (auto& p : model->parameters(true)) p.copy_(s.tensors[i++]);
  for (auto& b : model->buffers(true)) b.copy_(s.tensors[i++]);
}

std::string fmt_seconds(double s) {
  char buf[32];
  if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  }
  return buf;
}

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

/// The faster of max_threads and 1 intra-op thread for large element-wise work right now (a few
/// tens of ms): torch's OpenMP barriers stall whenever another process holds one of the cores.
int pick_threads(int max_threads) {
  torch::NoGradGuard g;
  Tensor x = torch::ones({1 << 22});
  auto time_with = [&](int n) {
    set_torch_threads(n);
    x.mul_(1.0);
    double best = 1e9;
    for (int rep = 0; rep < 3; ++rep) {
      const auto t0 = Clock::now();
      for (int i = 0; i < 4; ++i) x.mul_(1.0);
      best = std::min(best, seconds_since(t0));
    }
    return best;
  };
  const double single = time_with(1);
  const double multi = time_with(max_threads);
  return multi < 0.8 * single ? max_threads : 1;
}

}  // namespace

namespace {

/// Options, both datasets, and that they describe the same units, outputs and chunk width.
void check_inputs(const core::DecodingDataset& train, const core::DecodingDataset& val,
                  const TrainOptions& opts) {
  check_options(opts);
  check_dataset(train, "training");
  check_dataset(val, "validation");
  if (val.output_dim != train.output_dim) {
    throw std::invalid_argument("train_possm: training and validation output_dim differ");
  }
  if (val.units != train.units) {
    throw std::invalid_argument(
        "train_possm: training and validation datasets have different unit maps");
  }
  if (val.width_ns != train.width_ns) {
    throw std::invalid_argument("train_possm: training and validation chunk widths differ");
  }
}

/// The checkpoint's metadata, with the target standardization from the training set.
PossmMeta training_meta(const core::DecodingDataset& train, const TrainOptions& opts) {
  const int od = train.output_dim;
  const size_t n_train = train.chunks.size();
  PossmMeta meta;
  meta.config = opts.model;
  meta.units = train.units;
  meta.output_dim = od;
  meta.output_names = train.output_names;
  meta.width_ns = train.width_ns;
  meta.target_mean.assign(static_cast<size_t>(od), 0.f);
  meta.target_std.assign(static_cast<size_t>(od), 1.f);
  for (int j = 0; j < od; ++j) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n_train; ++i) s += train.target(i)[j];
    const double mean = s / static_cast<double>(n_train);
    for (size_t i = 0; i < n_train; ++i)
      s2 += (train.target(i)[j] - mean) * (train.target(i)[j] - mean);
    const double sd = std::sqrt(s2 / static_cast<double>(n_train));
    meta.target_mean[static_cast<size_t>(j)] = static_cast<float>(mean);
    meta.target_std[static_cast<size_t>(j)] = static_cast<float>(sd > 1e-6 ? sd : 1.0);
  }
  return meta;
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

/// The training targets, standardized with meta's mean and std: (chunks, output_dim).
Tensor standardized_targets(const core::DecodingDataset& train, const PossmMeta& meta) {
  const int od = train.output_dim;
  const size_t n_train = train.chunks.size();
  Tensor targets = torch::empty({static_cast<int64_t>(n_train), od}, torch::kFloat);
  auto acc = targets.accessor<float, 2>();
  for (size_t i = 0; i < n_train; ++i) {
    for (int j = 0; j < od; ++j) {
      acc[static_cast<int64_t>(i)][j] =
          (train.target(i)[j] - meta.target_mean[static_cast<size_t>(j)]) /
          meta.target_std[static_cast<size_t>(j)];
    }
  }
  return targets;
}

/// The learning-rate schedule's fixed quantities (linear warmup, then cosine decay).
struct Schedule {
  double total_steps = 0;  ///< optimizer steps over max_epochs
  double warmup = 1;       ///< warmup steps
};

Schedule make_schedule(const std::vector<std::pair<size_t, size_t>>& runs,
                       const TrainOptions& opts) {
  std::mt19937_64 probe(opts.seed);
  const size_t windows_per_epoch = epoch_windows(runs, opts.window_chunks, probe).size();
  if (windows_per_epoch == 0)
    throw std::invalid_argument("train_possm: no training window of >= 2 consecutive chunks");
  const size_t bs = static_cast<size_t>(opts.batch_size);
  const size_t batches_per_epoch = (windows_per_epoch + bs - 1) / bs;
  Schedule s;
  s.total_steps = static_cast<double>(batches_per_epoch) * opts.max_epochs;
  s.warmup = std::max(1.0, std::min(20.0, s.total_steps / 20.0));
  return s;
}

/// Learning rate of optimizer step `step`: linear warmup, then cosine decay over the epochs or,
/// with a budget, over whichever of epochs and wall time runs out first.
double learning_rate(const TrainOptions& opts, const Schedule& sched, double step,
                     Clock::time_point t0) {
  double progress = step / sched.total_steps;
  if (opts.max_seconds > 0) progress = std::max(progress, seconds_since(t0) / opts.max_seconds);
  progress = std::min(1.0, progress);
  return opts.lr * std::min(1.0, (step + 1) / sched.warmup) *
         (0.02 + 0.98 * 0.5 * (1 + std::cos(M_PI * progress)));
}

/// The windows [b0, b1) of an epoch as one packed batch (with unit dropout drawn from rng) and
/// their standardized targets (B, C, output_dim), C = the longest window.
std::pair<PackedBatch, Tensor> make_batch(const core::DecodingDataset& train,
                                          const Tensor& targets,
                                          const std::vector<std::pair<size_t, size_t>>& windows,
                                          size_t b0, size_t b1, const TrainOptions& opts,
                                          std::mt19937_64& rng) {
  const int od = train.output_dim;
  Windows batch;
  std::vector<std::vector<uint8_t>> keep(b1 - b0, std::vector<uint8_t>(train.units.size(), 1));
  std::bernoulli_distribution drop(opts.unit_dropout);
  const int64_t c_n = opts.window_chunks;
  Tensor tgt = torch::zeros({static_cast<int64_t>(b1 - b0), c_n, od}, torch::kFloat);
  for (size_t w = b0; w < b1; ++w) {
    const auto [s, e] = windows[w];
    std::vector<const core::TokenChunk*> chunks;
    for (size_t i = s; i < e; ++i) chunks.push_back(&train.chunks[i]);
    batch.push_back(std::move(chunks));
    if (opts.unit_dropout > 0) {
      for (auto& k : keep[w - b0]) k = drop(rng) ? 0 : 1;
    }
    tgt[static_cast<int64_t>(w - b0)]
        .narrow(0, 0, static_cast<int64_t>(e - s))
        .copy_(targets.narrow(0, static_cast<int64_t>(s), static_cast<int64_t>(e - s)));
  }
  PackedBatch pb = collate_packed(batch, opts.unit_dropout > 0 ? &keep : nullptr);
  tgt = tgt.narrow(1, 0, pb.chunks);
  return {std::move(pb), std::move(tgt)};
}

/// Mean R² per output dimension of a streaming decode of val from reset() with the model as it
/// is now (the model's inference cache is cleared again afterwards).
std::vector<double> validation_r2(Possm& model, const PossmMeta& meta,
                                  const core::DecodingDataset& val, int threads) {
  std::vector<double> r2;
  {
    PossmDecoder dec(model, meta, RuntimeOptions{"cpu", threads});
    r2 = core::r2_per_dim(val.targets, decode_dataset(dec, val), meta.output_dim);
  }
  model->clear_inference_cache();
  return r2;
}

/// Everything one train_possm() call carries from epoch to epoch.
class TrainingRun {
 public:
  TrainingRun(const core::DecodingDataset& train, const core::DecodingDataset& val,
              const TrainOptions& opts, Clock::time_point t0)
      : train_(train), val_(val), opts_(opts), t0_(t0), rng_(opts.seed),
        meta_(training_meta(train, opts)), model_(initial_model(opts, meta_)),
        targets_(standardized_targets(train, meta_)), runs_(consecutive_runs(train)),
        schedule_(make_schedule(runs_, opts)), params_(model_->parameters(true)),
        optimizer_(params_,
                   torch::optim::AdamWOptions(opts.lr).weight_decay(opts.weight_decay)),
        threads_now_(opts.threads) {
    for (const auto& p : params_) result_.num_parameters += static_cast<size_t>(p.numel());
  }

  /// Epochs until max_epochs, patience or the time budget runs out; then the best epoch's
  /// weights are restored and written to checkpoint_path.
  TrainResult run(const std::string& checkpoint_path) {
    for (int epoch = 1; epoch <= opts_.max_epochs && !out_of_time_; ++epoch) {
      const auto epoch_t0 = Clock::now();
      const bool frozen = finetune() && epoch <= opts_.finetune_frozen_epochs;
      const double loss = train_epoch(frozen);
      const auto val_t0 = Clock::now();
      const std::vector<double> r2 = validation_r2(model_, meta_, val_, threads_now_);
      last_val_seconds_ = seconds_since(val_t0);
      const double mean = keep_if_best(epoch, frozen, r2);
      const double elapsed = seconds_since(t0_);
      if (opts_.progress) print_progress(epoch, frozen, loss, mean, seconds_since(epoch_t0));
      if (since_best_ >= opts_.patience) break;
      if (opts_.max_seconds > 0 && elapsed >= opts_.max_seconds) out_of_time_ = true;
    }
    if (opts_.progress) std::fprintf(stderr, "\n");
    set_trainable(false);
    restore(model_, best_);
    model_->eval();
    save_possm_checkpoint(checkpoint_path, model_, meta_);
    result_.seconds = seconds_since(t0_);
    return result_;
  }

 private:
  bool finetune() const { return !opts_.finetune_from.empty(); }

  /// Fine-tuning's first epochs train the unit embedding only.
  void set_trainable(bool embedding_only) {
    for (auto& p : model_->named_parameters(true)) {
      p.value().set_requires_grad(!embedding_only || p.key() == "unit_emb.weight");
    }
  }

  /// One pass over a fresh shuffle of the training windows; returns the mean batch loss. Stops
  /// early (out_of_time_) when the budget would not leave time for the validation.
  double train_epoch(bool frozen) {
    set_trainable(frozen);
    model_->train();
    model_->clear_inference_cache();
    const auto windows = epoch_windows(runs_, opts_.window_chunks, rng_);
    // Thread choice (time-budgeted runs only, which are not bit-repeatable anyway): OpenMP with
    // 2 threads on 2 busy cores can be 3-5x slower than one thread, so re-measure every epoch.
    if (opts_.max_seconds > 0 && opts_.threads > 1) {
      threads_now_ = pick_threads(opts_.threads);
      set_torch_threads(threads_now_);
    }
    const size_t bs = static_cast<size_t>(opts_.batch_size);
    const int od = train_.output_dim;
    double loss_sum = 0;
    size_t loss_n = 0;
    for (size_t b0 = 0; b0 < windows.size(); b0 += bs) {
      const size_t b1 = std::min(windows.size(), b0 + bs);
      auto [pb, tgt] = make_batch(train_, targets_, windows, b0, b1, opts_, rng_);
      Tensor mask = pb.chunk_mask.unsqueeze(-1).to(torch::kFloat);
      Tensor pred = model_->forward_packed(pb);
      Tensor loss = ((pred - tgt).square() * mask).sum() / (mask.sum() * od);
      const double lr = learning_rate(opts_, schedule_, step_, t0_);
      for (auto& g : optimizer_.param_groups())
        static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
      optimizer_.zero_grad();
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params_, 1.0);
      optimizer_.step();
      step_ += 1;
      loss_sum += loss.item<double>();
      ++loss_n;
      if (opts_.max_seconds > 0 && seconds_since(t0_) + last_val_seconds_ >= opts_.max_seconds) {
        out_of_time_ = true;
        break;
      }
    }
    return loss_n ? loss_sum / static_cast<double>(loss_n) : 0.0;
  }

  /// Records the epoch and snapshots the weights when its mean validation R² beats the best by
  /// 1e-4 (the first epoch always does); counts towards patience otherwise, except while frozen.
  /// Returns the mean R² (-inf when not finite).
  double keep_if_best(int epoch, bool frozen, const std::vector<double>& r2) {
    double mean = 0;
    for (double v : r2) mean += v;
    mean /= static_cast<double>(r2.size());
    if (!std::isfinite(mean)) mean = -std::numeric_limits<double>::infinity();
    result_.epochs_run = epoch;
    if (!have_best_ || mean > best_r2_ + 1e-4) {
      best_r2_ = mean;
      result_.best_val_r2 = mean;
      result_.best_val_r2_per_dim = r2;
      result_.best_epoch = epoch;
      best_ = snapshot(model_);
      have_best_ = true;
      since_best_ = 0;
    } else if (!frozen) {
      ++since_best_;
    }
    return mean;
  }

  /// One-line progress bar on stderr (rewritten in place).
  void print_progress(int epoch, bool frozen, double loss, double mean_r2, double epoch_s) const {
    const double elapsed = seconds_since(t0_);
    double eta = epoch_s * (opts_.max_epochs - epoch);
    if (opts_.max_seconds > 0) eta = std::min(eta, std::max(0.0, opts_.max_seconds - elapsed));
    std::fprintf(stderr, "\r\033[Kepoch %d/%d%s  loss %.4f  val R² %.4f  best %.4f @%d  %s  ETA %s",
                 epoch, opts_.max_epochs, frozen ? " (frozen)" : "", loss, mean_r2, best_r2_,
                 result_.best_epoch, fmt_seconds(elapsed).c_str(), fmt_seconds(eta).c_str());
    std::fflush(stderr);
  }

  const core::DecodingDataset& train_;
  const core::DecodingDataset& val_;
  const TrainOptions& opts_;
  const Clock::time_point t0_;
  std::mt19937_64 rng_;
  PossmMeta meta_;
  Possm model_;
  Tensor targets_;  // standardized (chunks, output_dim)
  std::vector<std::pair<size_t, size_t>> runs_;
  Schedule schedule_;
  std::vector<Tensor> params_;
  torch::optim::AdamW optimizer_;
  TrainResult result_;
  Snapshot best_;
  bool have_best_ = false;
  double best_r2_ = -std::numeric_limits<double>::infinity();
  int since_best_ = 0;
  double step_ = 0;  // optimizer steps so far
  double last_val_seconds_ = 0;
  bool out_of_time_ = false;
  int threads_now_;
};

}  // namespace

TrainResult train_possm(const core::DecodingDataset& train, const core::DecodingDataset& val,
                        const TrainOptions& opts, const std::string& checkpoint_path) {
  const auto t0 = Clock::now();
  check_inputs(train, val, opts);
  // Seeded before the model is built: its initial weights come from torch's generator.
  set_torch_threads(opts.threads);
  torch::manual_seed(opts.seed);
  return TrainingRun(train, val, opts, t0).run(checkpoint_path);
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
