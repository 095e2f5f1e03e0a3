#include "models/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <mutex>
#include <random>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/r2.h"
#include "models/checkpoint_file.h"
#include "models/grad_sync.h"
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

struct Window {
  size_t session, begin, end;
};

/// Window starts of one session for one epoch: stride window/2 from a random phase, inside each
/// run; windows shorter than 2 chunks (or the whole run when it is shorter) are dropped.
void session_windows(const std::vector<std::pair<size_t, size_t>>& runs, size_t session, int window,
                     std::mt19937_64& rng, std::vector<Window>& out) {
  const size_t w = static_cast<size_t>(window);
  const size_t stride = std::max<size_t>(1, w / 2);
  for (const auto& [b, e] : runs) {
    const size_t phase = std::uniform_int_distribution<size_t>(0, stride - 1)(rng);
    for (size_t s = b + (e - b > w ? phase : 0); s < e; s += stride) {
      const size_t end = std::min(e, s + w);
      if (end - s >= std::min<size_t>(2, w)) out.push_back({session, s, end});
      if (end == e) break;
    }
  }
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

/// Per-dimension mean and std (std 1 where the target is constant) of a dataset's targets.
std::pair<std::vector<float>, std::vector<float>> target_stats(const core::DecodingDataset& d) {
  const int od = d.output_dim;
  const size_t n = d.chunks.size();
  std::vector<float> mean_v(static_cast<size_t>(od), 0.f), std_v(static_cast<size_t>(od), 1.f);
  for (int j = 0; j < od; ++j) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; ++i) s += d.target(i)[j];
    const double mean = s / static_cast<double>(n);
    for (size_t i = 0; i < n; ++i) s2 += (d.target(i)[j] - mean) * (d.target(i)[j] - mean);
    const double sd = std::sqrt(s2 / static_cast<double>(n));
    mean_v[static_cast<size_t>(j)] = static_cast<float>(mean);
    std_v[static_cast<size_t>(j)] = static_cast<float>(sd > 1e-6 ? sd : 1.0);
  }
  return {mean_v, std_v};
}

/// The checkpoint's metadata, with the target standardization from the training set.
PossmMeta training_meta(const core::DecodingDataset& train, const TrainOptions& opts) {
  PossmMeta meta;
  meta.config = opts.model;
  meta.units = train.units;
  meta.output_dim = train.output_dim;
  meta.output_names = train.output_names;
  meta.width_ns = train.width_ns;
  std::tie(meta.target_mean, meta.target_std) = target_stats(train);
  return meta;
}

/// Multi-session metadata: the sessions' units one after the other, per-session standardization.
PossmMeta multi_meta(const std::vector<TrainSession>& sessions, const PossmConfig& config) {
  PossmMeta meta;
  meta.config = config;
  const auto& first = *sessions.front().train;
  meta.output_dim = first.output_dim;
  meta.output_names = first.output_names;
  meta.width_ns = first.width_ns;
  for (const auto& ts : sessions) {
    PossmSession ps;
    ps.name = ts.name;
    ps.unit_begin = static_cast<int64_t>(meta.units.size());
    ps.unit_count = static_cast<int64_t>(ts.train->units.size());
    std::tie(ps.target_mean, ps.target_std) = target_stats(*ts.train);
    meta.units.insert(meta.units.end(), ts.train->units.begin(), ts.train->units.end());
    meta.sessions.push_back(std::move(ps));
  }
  meta.default_session = static_cast<int>(sessions.size()) - 1;
  meta.target_mean = meta.sessions.back().target_mean;
  meta.target_std = meta.sessions.back().target_std;
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

/// A dataset's targets standardized with (mean, std): (chunks, output_dim).
Tensor standardized_targets(const core::DecodingDataset& train, const std::vector<float>& mean,
                            const std::vector<float>& sd) {
  const int od = train.output_dim;
  const size_t n_train = train.chunks.size();
  Tensor targets = torch::empty({static_cast<int64_t>(n_train), od}, torch::kFloat);
  auto acc = targets.accessor<float, 2>();
  for (size_t i = 0; i < n_train; ++i) {
    for (int j = 0; j < od; ++j) {
      acc[static_cast<int64_t>(i)][j] =
          (train.target(i)[j] - mean[static_cast<size_t>(j)]) / sd[static_cast<size_t>(j)];
    }
  }
  return targets;
}

/// The learning-rate schedule's fixed quantities (linear warmup, then cosine decay).
struct Schedule {
  double total_steps = 0;  ///< optimizer steps over max_epochs
  double warmup = 1;       ///< warmup steps
};

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

/// Mean R² per output dimension of a streaming decode of val with `model` (a single-session
/// model or view; its inference cache is cleared again afterwards).
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

double mean_of(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  return std::isfinite(m) ? m : -std::numeric_limits<double>::infinity();
}

/// Which parameters train: everything, or only the unit and session embeddings (calibration's
/// unit re-identification, fine-tuning's first epochs).
enum class Trainable { kAll, kEmbeddings };

bool is_embedding(const std::string& key) {
  return key == "unit_emb.weight" || key == "session_emb";
}

/// One session's slot in a run: its data with unit indices moved to the model's vocabulary.
struct Slot {
  std::string name;
  const core::DecodingDataset* train = nullptr;
  const core::DecodingDataset* val = nullptr;
  core::DecodingDataset shifted;  ///< train with unit + unit_begin (multi-session only)
  int64_t unit_begin = 0;
  Tensor targets;  ///< standardized (chunks, output_dim)
  std::vector<std::pair<size_t, size_t>> runs;
  const core::DecodingDataset& chunks() const { return unit_begin == 0 ? *train : shifted; }
};

std::string rng_state(const std::mt19937_64& rng) {
  std::ostringstream os;
  os << rng;
  return os.str();
}

/// Everything one training call carries from epoch to epoch, for one session (train_possm: a
/// single-session model, checkpoint format 1) or many (a session embedding, format 2).
class TrainingRun {
 public:
  TrainingRun(const std::vector<TrainSession>& sessions, const TrainOptions& opts,
              Clock::time_point t0, PossmMeta meta, Possm model, Trainable trainable,
              const DistOptions* dist = nullptr)
      : opts_(opts),
        t0_(t0),
        rng_(opts.seed),
        meta_(std::move(meta)),
        model_(std::move(model)),
        trainable_(trainable),
        params_(model_->parameters(true)),
        optimizer_(params_, torch::optim::AdamWOptions(opts.lr).weight_decay(opts.weight_decay)),
        threads_now_(opts.threads) {
    multi_ = !meta_.sessions.empty();
    for (size_t s = 0; s < sessions.size(); ++s) {
      Slot slot;
      slot.name = sessions[s].name;
      slot.train = sessions[s].train;
      slot.val = sessions[s].val;
      const auto& mean = multi_ ? meta_.sessions[s].target_mean : meta_.target_mean;
      const auto& sd = multi_ ? meta_.sessions[s].target_std : meta_.target_std;
      slot.targets = standardized_targets(*slot.train, mean, sd);
      slot.runs = consecutive_runs(*slot.train);
      if (multi_ && meta_.sessions[s].unit_begin > 0) {
        slot.unit_begin = meta_.sessions[s].unit_begin;
        slot.shifted = *slot.train;
        for (auto& ch : slot.shifted.chunks)
          for (auto& u : ch.unit) u += static_cast<int32_t>(slot.unit_begin);
      }
      slots_.push_back(std::move(slot));
    }
    for (const auto& p : params_) result_.num_parameters += static_cast<size_t>(p.numel());
    if (dist != nullptr && dist->world_size > 1) {
      sync_ = std::make_unique<GradientSync>(*dist);
      rank_ = dist->rank;
      world_ = dist->world_size;
      sync_->broadcast(params_);
    }
    show_progress_ = opts.progress && rank_ == 0;
    std::mt19937_64 probe(opts.seed);
    const size_t windows_per_epoch = epoch_windows(probe).size();
    if (windows_per_epoch == 0)
      throw std::invalid_argument("train_possm: no training window of >= 2 consecutive chunks");
    const size_t bs = static_cast<size_t>(opts.batch_size);
    schedule_.total_steps =
        static_cast<double>((windows_per_epoch + bs - 1) / bs) * opts.max_epochs;
    schedule_.warmup = std::max(1.0, std::min(20.0, schedule_.total_steps / 20.0));
  }

  /// Epochs until max_epochs, patience or the time budget runs out; then the best epoch's
  /// weights are restored and, when checkpoint_path is not empty, written there.
  TrainResult run(const std::string& checkpoint_path, const std::string& resume_path = "",
                  int stop_after = 0) {
    int first = 1;
    const bool writer = rank_ == 0;
    if (!resume_path.empty() && std::ifstream(resume_path).good()) {
      first = load_resume(resume_path) + 1;
      resumed_from_ = first - 1;
    }
    int this_call = 0;
    for (int epoch = first; epoch <= opts_.max_epochs && !out_of_time_; ++epoch) {
      const auto epoch_t0 = Clock::now();
      const bool frozen = trainable_ == Trainable::kEmbeddings ||
                          (finetune() && epoch <= opts_.finetune_frozen_epochs);
      const auto train_t0 = Clock::now();
      const double loss = train_epoch(frozen);
      train_seconds_ += seconds_since(train_t0);
      const auto val_t0 = Clock::now();
      const double mean = keep_if_best(epoch, frozen && trainable_ == Trainable::kAll, validate());
      last_val_seconds_ = seconds_since(val_t0);
      const double elapsed = seconds_since(t0_);
      if (show_progress_) print_progress(epoch, frozen, loss, mean, seconds_since(epoch_t0));
      const bool stop = since_best_ >= opts_.patience;
      if (writer && !resume_path.empty()) save_resume(resume_path, epoch, stop);
      if (stop || stopped_) break;
      if (opts_.max_seconds > 0 && elapsed >= opts_.max_seconds) out_of_time_ = true;
      if (stop_after > 0 && ++this_call >= stop_after && epoch < opts_.max_epochs) {
        interrupted_ = true;
        break;
      }
    }
    if (show_progress_) std::fprintf(stderr, "\n");
    set_trainable(false);
    restore(model_, best_);
    model_->eval();
    if (writer && !interrupted_ && !checkpoint_path.empty())
      save_possm_checkpoint(checkpoint_path, model_, meta_);
    result_.seconds = seconds_since(t0_);
    return result_;
  }

  bool interrupted() const { return interrupted_; }
  double windows_per_s() const {
    return train_seconds_ > 0 ? windows_trained_ / train_seconds_ : 0.0;
  }
  int resumed_from() const { return resumed_from_; }
  const std::vector<double>& best_session_r2() const { return best_session_r2_; }
  Possm& model() { return model_; }
  PossmMeta& meta() { return meta_; }

 private:
  bool finetune() const { return !opts_.finetune_from.empty(); }

  std::vector<Window> epoch_windows(std::mt19937_64& rng) const {
    std::vector<Window> out;
    for (size_t s = 0; s < slots_.size(); ++s)
      session_windows(slots_[s].runs, s, opts_.window_chunks, rng, out);
    std::shuffle(out.begin(), out.end(), rng);
    return out;
  }

  /// Mean R² per session (one decode of each session's validation set from reset()); keeps the
  /// per-dimension R² of a single session in last_dims_.
  std::vector<double> validate() {
    std::vector<double> per_session;
    if (!multi_) {
      last_dims_ = validation_r2(model_, meta_, *slots_[0].val, threads_now_);
      return {mean_of(last_dims_)};
    }
    torch::NoGradGuard g;
    for (size_t s = 0; s < slots_.size(); ++s) {
      auto [view, vmeta] = session_view(model_, meta_, static_cast<int>(s));
      std::vector<double> dims = validation_r2(view, vmeta, *slots_[s].val, threads_now_);
      per_session.push_back(mean_of(dims));
      if (slots_.size() == 1) last_dims_ = dims;
    }
    if (slots_.size() > 1) last_dims_ = per_session;
    return per_session;
  }

  void set_trainable(bool embedding_only) {
    for (auto& p : model_->named_parameters(true))
      p.value().set_requires_grad(!embedding_only || is_embedding(p.key()));
  }

  /// The windows [b0, b1) of an epoch as one packed batch (unit dropout drawn from rng) and their
  /// standardized targets (B, C, output_dim), C = the longest window.
  std::pair<PackedBatch, Tensor> make_batch(const std::vector<Window>& windows, size_t b0,
                                            size_t b1) {
    const int od = meta_.output_dim;
    Windows batch;
    std::vector<std::vector<uint8_t>> keep(b1 - b0, std::vector<uint8_t>(meta_.units.size(), 1));
    std::bernoulli_distribution drop(opts_.unit_dropout);
    const int64_t c_n = opts_.window_chunks;
    Tensor tgt = torch::zeros({static_cast<int64_t>(b1 - b0), c_n, od}, torch::kFloat);
    std::vector<int64_t> session;
    // Every rank draws every window's dropout mask (the RNG stays in step) and keeps windows
    // rank, rank + world, ... of the batch.
    std::vector<std::vector<uint8_t>> mine;
    int64_t row = 0;
    for (size_t w = b0; w < b1; ++w) {
      const Window& win = windows[w];
      const Slot& slot = slots_[win.session];
      if (opts_.unit_dropout > 0) {
        auto& k = keep[w - b0];
        const size_t u0 = static_cast<size_t>(slot.unit_begin);
        for (size_t u = 0; u < slot.train->units.size(); ++u) k[u0 + u] = drop(rng_) ? 0 : 1;
      }
      if (static_cast<int>((w - b0) % static_cast<size_t>(world_)) != rank_) continue;
      const auto& data = slot.chunks();
      std::vector<const core::TokenChunk*> chunks;
      for (size_t i = win.begin; i < win.end; ++i) chunks.push_back(&data.chunks[i]);
      batch.push_back(std::move(chunks));
      mine.push_back(keep[w - b0]);
      session.push_back(static_cast<int64_t>(win.session));
      const auto len = static_cast<int64_t>(win.end - win.begin);
      tgt[row++].narrow(0, 0, len).copy_(
          slot.targets.narrow(0, static_cast<int64_t>(win.begin), len));
    }
    if (batch.empty()) return {PackedBatch{}, Tensor()};
    tgt = tgt.narrow(0, 0, row);
    PackedBatch pb = collate_packed(batch, opts_.unit_dropout > 0 ? &mine : nullptr);
    if (multi_) pb.session = torch::tensor(session, torch::kLong);
    tgt = tgt.narrow(1, 0, pb.chunks);
    return {std::move(pb), std::move(tgt)};
  }

  /// One pass over a fresh shuffle of the training windows; returns the mean batch loss. Stops
  /// early (out_of_time_) when the budget would not leave time for the validation.
  double train_epoch(bool frozen) {
    set_trainable(frozen);
    model_->train();
    model_->clear_inference_cache();
    const auto windows = epoch_windows(rng_);
    // Thread choice (time-budgeted runs only, which are not bit-repeatable anyway): OpenMP with
    // 2 threads on 2 busy cores can be 3-5x slower than one thread, so re-measure every epoch.
    if (opts_.max_seconds > 0 && opts_.threads > 1) {
      threads_now_ = pick_threads(opts_.threads);
      set_torch_threads(threads_now_);
    }
    const size_t bs = static_cast<size_t>(opts_.batch_size);
    const int od = meta_.output_dim;
    double loss_sum = 0;
    size_t loss_n = 0;
    for (size_t b0 = 0; b0 < windows.size(); b0 += bs) {
      const size_t b1 = std::min(windows.size(), b0 + bs);
      auto [pb, tgt] = make_batch(windows, b0, b1);
      // Normalised by the whole (global) batch's target count, so that the ranks' gradients sum
      // to the one-rank gradient.
      double count = 0;
      for (size_t w = b0; w < b1; ++w)
        count += static_cast<double>(windows[w].end - windows[w].begin);
      count *= od;
      const double lr = learning_rate(opts_, schedule_, step_, t0_);
      for (auto& g : optimizer_.param_groups())
        static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
      optimizer_.zero_grad();
      Tensor loss_sum_t = torch::zeros({1});
      if (tgt.defined()) {
        Tensor mask = pb.chunk_mask.unsqueeze(-1).to(torch::kFloat);
        Tensor pred = model_->forward_packed(pb);
        Tensor loss = ((pred - tgt).square() * mask).sum() / count;
        loss.backward();
        loss_sum_t = loss.detach().reshape({1}).clone();
      }
      if (sync_) sync_->allreduce_gradients(params_, loss_sum_t);
      torch::nn::utils::clip_grad_norm_(params_, 1.0);
      optimizer_.step();
      step_ += 1;
      windows_trained_ += static_cast<double>(b1 - b0);
      const double l = loss_sum_t.item<double>();
      if (!std::isfinite(l)) {
        // A diverged step: stop here; the best epoch so far is what gets saved.
        std::fprintf(stderr, "\ntraining: the loss became non-finite at step %.0f; stopping\n",
                     step_);
        stopped_ = true;
        break;
      }
      loss_sum += l;
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
  double keep_if_best(int epoch, bool frozen, const std::vector<double>& per_session) {
    const double mean = mean_of(per_session);
    result_.epochs_run = epoch;
    if (!have_best_ || mean > best_r2_ + 1e-4) {
      best_r2_ = mean;
      result_.best_val_r2 = mean;
      result_.best_val_r2_per_dim = last_dims_;
      result_.best_epoch = epoch;
      best_session_r2_ = per_session;
      best_ = snapshot(model_);
      have_best_ = true;
      since_best_ = 0;
    } else if (!frozen) {
      ++since_best_;
    }
    return mean;
  }

  /// One-line progress bar on stderr (rewritten in place); per-session R² for a few sessions.
  void print_progress(int epoch, bool frozen, double loss, double mean_r2, double epoch_s) const {
    const double elapsed = seconds_since(t0_);
    double eta = epoch_s * (opts_.max_epochs - epoch);
    if (opts_.max_seconds > 0) eta = std::min(eta, std::max(0.0, opts_.max_seconds - elapsed));
    std::string per;
    if (multi_ && slots_.size() > 1) {
      per = "  [";
      for (size_t i = 0; i < last_dims_.size() && i < 8; ++i) {
        char b[16];
        std::snprintf(b, sizeof b, "%s%.2f", i ? " " : "", last_dims_[i]);
        per += b;
      }
      per += last_dims_.size() > 8 ? " …]" : "]";
    }
    std::fprintf(
        stderr, "\r\033[Kepoch %d/%d%s  loss %.4f  val R² %.4f%s  best %.4f @%d  %s  ETA %s", epoch,
        opts_.max_epochs, frozen ? " (frozen)" : "", loss, mean_r2, per.c_str(), best_r2_,
        result_.best_epoch, fmt_seconds(elapsed).c_str(), fmt_seconds(eta).c_str());
    std::fflush(stderr);
  }

  // ---- resume state: a CheckpointFile of kind "possm-resume" (container checks included).
  void save_resume(const std::string& path, int epoch, bool finished) {
    CheckpointFile ck;
    ck.kind = "possm-resume";
    ck.set_int("epoch", finished ? opts_.max_epochs : epoch);
    ck.set_double("step", step_);
    ck.set_double("best_r2", best_r2_);
    ck.set_int("since_best", since_best_);
    ck.set_int("best_epoch", result_.best_epoch);
    ck.set_int("epochs_run", result_.epochs_run);
    ck.set_string("rng", rng_state(rng_));
    std::vector<float> bs(best_session_r2_.begin(), best_session_r2_.end());
    std::vector<float> bd(result_.best_val_r2_per_dim.begin(), result_.best_val_r2_per_dim.end());
    ck.set_floats("best_session_r2", bs);
    ck.set_floats("best_dims_r2", bd);
    torch::serialize::OutputArchive ar, model_ar, best_ar, optim_ar;
    {
      torch::NoGradGuard g;
      size_t i = 0;
      for (const auto& p : model_->named_parameters(true)) {
        model_ar.write(p.key(), p.value().detach());
        best_ar.write(p.key(), best_.tensors[i++]);
      }
      for (const auto& b : model_->named_buffers(true)) {
        model_ar.write(b.key(), b.value(), true);
        best_ar.write(b.key(), best_.tensors[i++], true);
      }
    }
    optimizer_.save(optim_ar);
    ar.write("model", model_ar);
    ar.write("best", best_ar);
    ar.write("optim", optim_ar);
    std::ostringstream os;
    ar.save_to(os);
    ck.payload = os.str();
    ck.write(path);
  }

  /// Returns the last completed epoch.
  int load_resume(const std::string& path) {
    CheckpointFile ck = CheckpointFile::read(path);
    if (ck.kind != "possm-resume")
      throw std::runtime_error("resume file '" + path + "' is a '" + ck.kind + "' file");
    try {
      step_ = ck.get_double("step");
      best_r2_ = ck.get_double("best_r2");
      since_best_ = static_cast<int>(ck.get_int("since_best"));
      result_.best_epoch = static_cast<int>(ck.get_int("best_epoch"));
      result_.epochs_run = static_cast<int>(ck.get_int("epochs_run"));
      std::istringstream is(ck.get_string("rng"));
      is >> rng_;
      for (float v : ck.get_floats("best_session_r2")) best_session_r2_.push_back(v);
      for (float v : ck.get_floats("best_dims_r2")) result_.best_val_r2_per_dim.push_back(v);
      result_.best_val_r2 = best_r2_;
      torch::serialize::InputArchive ar, model_ar, best_ar, optim_ar;
      ar.load_from(ck.payload.data(), ck.payload.size());
      ar.read("model", model_ar);
      ar.read("best", best_ar);
      ar.read("optim", optim_ar);
      torch::NoGradGuard g;
      best_.tensors.clear();
      for (auto& p : model_->named_parameters(true)) {
        Tensor t, b;
        model_ar.read(p.key(), t);
        best_ar.read(p.key(), b);
        if (t.sizes() != p.value().sizes())
          throw std::runtime_error("tensor '" + p.key() + "' does not fit this model");
        p.value().copy_(t);
        best_.tensors.push_back(b);
      }
      for (auto& bu : model_->named_buffers(true)) {
        Tensor t, b;
        model_ar.read(bu.key(), t, true);
        best_ar.read(bu.key(), b, true);
        bu.value().copy_(t);
        best_.tensors.push_back(b);
      }
      optimizer_.load(optim_ar);
      have_best_ = true;
      return static_cast<int>(ck.get_int("epoch"));
    } catch (const std::exception& e) {
      throw std::runtime_error("resume file '" + path + "': " + first_line(e.what()) +
                               " (delete it to start over)");
    }
  }

  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

  std::vector<Slot> slots_;
  const TrainOptions& opts_;
  const Clock::time_point t0_;
  std::mt19937_64 rng_;
  PossmMeta meta_;
  Possm model_;
  Trainable trainable_;
  bool multi_ = false;
  Schedule schedule_;
  std::vector<Tensor> params_;
  torch::optim::AdamW optimizer_;
  TrainResult result_;
  Snapshot best_;
  std::vector<double> best_session_r2_, last_dims_;
  bool have_best_ = false;
  double best_r2_ = -std::numeric_limits<double>::infinity();
  int since_best_ = 0;
  double step_ = 0;  // optimizer steps so far
  double last_val_seconds_ = 0;
  bool out_of_time_ = false, stopped_ = false, interrupted_ = false;
  int resumed_from_ = 0;
  int threads_now_;
  std::unique_ptr<GradientSync> sync_;
  int rank_ = 0, world_ = 1;
  bool show_progress_ = true;
  double windows_trained_ = 0, train_seconds_ = 0;
};

void check_sessions(const std::vector<TrainSession>& sessions, const TrainOptions& opts) {
  if (sessions.empty()) throw std::invalid_argument("pretrain: no sessions");
  check_options(opts);
  for (const auto& s : sessions) {
    if (s.train == nullptr || s.val == nullptr)
      throw std::invalid_argument("pretrain: session '" + s.name + "' lacks data");
    check_inputs(*s.train, *s.val, opts);
    const auto& f = *sessions.front().train;
    if (s.train->output_dim != f.output_dim || s.train->width_ns != f.width_ns) {
      throw std::invalid_argument("pretrain: session '" + s.name +
                                  "' has a different output_dim or chunk width than '" +
                                  sessions.front().name + "'");
    }
  }
}

/// Settings tried by the search: the defaults first, then lr x {1/3, 3}, stronger weight decay and
/// dropout (deterministic order).
std::vector<TrainOptions> search_candidates(const TrainOptions& base) {
  struct Delta {
    double lr, wd, drop;
  };
  const Delta grid[] = {{1, 1, 1},  {1.0 / 3, 1, 1},  {3, 1, 1},  {1.0 / 3, 10, 2},
                        {1, 10, 2}, {1.0 / 10, 1, 1}, {3, 10, 1}, {1.0 / 3, 1, 3}};
  std::vector<TrainOptions> out;
  for (const auto& d : grid) {
    if (static_cast<int>(out.size()) >= std::max(2, std::min(8, base.search_candidates))) break;
    TrainOptions o = base;
    o.lr = base.lr * d.lr;
    o.weight_decay = std::max(1e-4, base.weight_decay) * d.wd;
    o.unit_dropout = std::min(0.6, std::max(0.05, base.unit_dropout) * d.drop);
    o.search = false;
    o.progress = false;
    out.push_back(o);
  }
  return out;
}

/// Successive halving: every candidate for a short run, the better half for twice as long, the
/// winner returned. trial(opts) trains with opts and returns the best validation R².
TrainOptions choose_settings(const TrainOptions& base,
                             const std::function<double(const TrainOptions&)>& trial,
                             std::string& report) {
  auto cands = search_candidates(base);
  const int rung1 = std::max(2, base.max_epochs / 8);
  const double budget = base.max_seconds > 0 ? 0.4 * base.max_seconds : 0.0;
  std::vector<std::pair<double, size_t>> scores;
  char line[200];
  report = "search (successive halving on the validation split):\n";
  int epochs = rung1;
  std::vector<size_t> alive(cands.size());
  for (size_t i = 0; i < cands.size(); ++i) alive[i] = i;
  for (int rung = 1; alive.size() > 1; ++rung) {
    scores.clear();
    for (size_t i : alive) {
      TrainOptions o = cands[i];
      o.max_epochs = epochs;
      o.patience = epochs;
      o.max_seconds = budget > 0 ? budget / 2 / static_cast<double>(alive.size()) : 0.0;
      const double r2 = trial(o);
      scores.emplace_back(std::isfinite(r2) ? r2 : -1e9, i);
      std::snprintf(line, sizeof line,
                    "  rung %d (%d epochs): lr %.2g  wd %.2g  dropout %.2f -> val R2 %.4f\n", rung,
                    epochs, o.lr, o.weight_decay, o.unit_dropout, r2);
      report += line;
      if (base.progress) std::fprintf(stderr, "%s", line);
    }
    std::stable_sort(scores.begin(), scores.end(),
                     [](auto& a, auto& b) { return a.first > b.first; });
    alive.clear();
    for (size_t k = 0; k < std::max<size_t>(1, scores.size() / 2); ++k)
      alive.push_back(scores[k].second);
    epochs *= 2;
  }
  TrainOptions won = base;
  won.lr = cands[alive[0]].lr;
  won.weight_decay = cands[alive[0]].weight_decay;
  won.unit_dropout = cands[alive[0]].unit_dropout;
  won.search = false;
  if (base.max_seconds > 0) won.max_seconds = std::max(1.0, base.max_seconds - budget);
  std::snprintf(line, sizeof line,
                "  chose lr %.3g, weight decay %.3g, unit dropout %.2f (best validation R2 of the "
                "last rung%s)\n",
                won.lr, won.weight_decay, won.unit_dropout,
                alive[0] == 0 ? ", = the defaults" : "");
  report += line;
  return won;
}

}  // namespace

TrainResult train_possm(const core::DecodingDataset& train, const core::DecodingDataset& val,
                        const TrainOptions& opts, const std::string& checkpoint_path) {
  const auto t0 = Clock::now();
  check_inputs(train, val, opts);
  if (opts.search) {
    std::string report;
    const TrainOptions won = choose_settings(
        opts, [&](const TrainOptions& o) { return train_possm(train, val, o, "").best_val_r2; },
        report);
    TrainResult r = train_possm(train, val, won, checkpoint_path + ".search.tmp");
    auto [model, meta] = load_possm_checkpoint(checkpoint_path + ".search.tmp");
    std::remove((checkpoint_path + ".search.tmp").c_str());
    meta.provenance = report;
    save_possm_checkpoint(checkpoint_path, model, meta);
    r.search_report = report;
    return r;
  }
  // Seeded before the model is built: its initial weights come from torch's generator.
  set_torch_threads(opts.threads);
  torch::manual_seed(opts.seed);
  PossmMeta meta = training_meta(train, opts);
  Possm model = initial_model(opts, meta);
  return TrainingRun({TrainSession{"session", &train, &val}}, opts, t0, std::move(meta), model,
                     Trainable::kAll)
      .run(checkpoint_path);
}

PretrainResult pretrain_possm(const std::vector<TrainSession>& sessions,
                              const PretrainOptions& opts, const std::string& checkpoint_path) {
  const auto t0 = Clock::now();
  TrainOptions topts = opts.train;
  topts.finetune_from.clear();
  check_sessions(sessions, topts);
  std::string report;
  if (topts.search && opts.dist.world_size > 1)
    throw std::invalid_argument(
        "pretrain: the settings search runs on one rank (drop --search or the ranks)");
  if (topts.search) {
    topts = choose_settings(
        topts,
        [&](const TrainOptions& o) {
          return pretrain_possm(sessions, PretrainOptions{o, "", 0, {}}, "").best_val_r2;
        },
        report);
  }
  if (opts.dist.world_size > 1) validate_dist_options(opts.dist);
  set_torch_threads(topts.threads);
  PossmMeta meta = multi_meta(sessions, topts.model);
  std::string names;
  for (const auto& s : sessions) names += (names.empty() ? "" : ", ") + s.name;
  meta.provenance = "pretrained on " + std::to_string(sessions.size()) + " sessions (" + names +
                    "); lr " + std::to_string(topts.lr) + ", weight decay " +
                    std::to_string(topts.weight_decay) + ", unit dropout " +
                    std::to_string(topts.unit_dropout) + (report.empty() ? "" : "; " + report);
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
