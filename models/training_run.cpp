#include "models/training_run.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>

#include "core/r2.h"

namespace spikeflow::models::detail {

using torch::Tensor;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

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

double mean_of(const std::vector<double>& v) {
  double m = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  return std::isfinite(m) ? m : -std::numeric_limits<double>::infinity();
}

namespace {

std::string fmt_seconds(double s) {
  char buf[32];
  if (s >= 60) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s / 60), static_cast<int>(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%.0fs", s);
  }
  return buf;
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

bool is_embedding(const std::string& key) {
  return key == "unit_emb.weight" || key == "session_emb";
}

}  // namespace

TrainingRun::TrainingRun(const std::vector<TrainSession>& sessions, const TrainOptions& opts,
            Clock::time_point t0, PossmMeta meta, Possm model, Trainable trainable,
            const DistOptions* dist)
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
  if (opts.ema > 0) {
    torch::NoGradGuard g;
    for (const auto& p : params_) ema_.push_back(p.detach().clone());
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

TrainResult TrainingRun::run(const std::string& checkpoint_path, const std::string& resume_path,
                int stop_after) {
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
    // With an EMA the averaged weights are validated, kept as the best and saved; training
    // continues from the raw weights.
    if (!ema_.empty()) swap_ema();
    const double mean = keep_if_best(epoch, frozen && trainable_ == Trainable::kAll, validate());
    if (!ema_.empty()) swap_ema();
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
  result_.lr = opts_.lr;
  result_.weight_decay = opts_.weight_decay;
  result_.unit_dropout = opts_.unit_dropout;
  result_.ema = opts_.ema;
  return result_;
}

std::vector<Window> TrainingRun::epoch_windows(std::mt19937_64& rng) const {
  std::vector<Window> out;
  for (size_t s = 0; s < slots_.size(); ++s)
    session_windows(slots_[s].runs, s, opts_.window_chunks, rng, out);
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

std::vector<double> TrainingRun::validate() {
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

void TrainingRun::set_trainable(bool embedding_only) {
  for (auto& p : model_->named_parameters(true))
    p.value().set_requires_grad(!embedding_only || is_embedding(p.key()));
}

std::pair<PackedBatch, Tensor> TrainingRun::make_batch(const std::vector<Window>& windows,
                                                       size_t b0, size_t b1) {
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

double TrainingRun::train_epoch(bool frozen) {
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
  double loss_sum = 0;
  size_t loss_n = 0;
  for (size_t b0 = 0; b0 < windows.size(); b0 += bs) {
    const size_t b1 = std::min(windows.size(), b0 + bs);
    const double l = optimizer_step(windows, b0, b1, learning_rate(opts_, schedule_, step_, t0_));
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

double TrainingRun::optimizer_step(const std::vector<Window>& windows, size_t b0, size_t b1,
                                   double lr) {
  auto [pb, tgt] = make_batch(windows, b0, b1);
  // Normalised by the whole (global) batch's target count, so that the ranks' gradients sum
  // to the one-rank gradient.
  double count = 0;
  for (size_t w = b0; w < b1; ++w) count += static_cast<double>(windows[w].end - windows[w].begin);
  count *= meta_.output_dim;
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
  if (!ema_.empty()) update_ema();
  step_ += 1;
  windows_trained_ += static_cast<double>(b1 - b0);
  return loss_sum_t.item<double>();
}

void TrainingRun::update_ema() {
  // The decay warms up (as TensorFlow's ExponentialMovingAverage with num_updates does), so that
  // a short run's average does not drag the random initialisation along.
  torch::NoGradGuard g;
  const double d = std::min(opts_.ema, (1.0 + step_) / (10.0 + step_));
  for (size_t i = 0; i < params_.size(); ++i) ema_[i].mul_(d).add_(params_[i].detach(), 1.0 - d);
}

void TrainingRun::swap_ema() {
  torch::NoGradGuard g;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor raw = params_[i].detach().clone();
    params_[i].copy_(ema_[i]);
    ema_[i].copy_(raw);
  }
}

LrCurve TrainingRun::lr_sweep(double lo, double hi, int steps) {
  LrCurve curve;
  const auto sweep_t0 = Clock::now();
  set_trainable(trainable_ == Trainable::kEmbeddings);
  model_->train();
  model_->clear_inference_cache();
  const size_t bs = static_cast<size_t>(opts_.batch_size);
  std::vector<Window> windows = epoch_windows(rng_);
  curve.steps_per_epoch = static_cast<int>((windows.size() + bs - 1) / bs);
  const double beta = 0.98;  // loss smoothing, bias-corrected (as in fastai's lr_find)
  double avg = 0, best = std::numeric_limits<double>::infinity();
  size_t b0 = 0;
  for (int k = 0; k < steps; ++k) {
    if (b0 >= windows.size()) {
      windows = epoch_windows(rng_);
      b0 = 0;
    }
    const size_t b1 = std::min(windows.size(), b0 + bs);
    const double lr = lo * std::pow(hi / lo, steps > 1 ? k / (steps - 1.0) : 0.0);
    const double l = optimizer_step(windows, b0, b1, lr);
    b0 = b1;
    if (!std::isfinite(l)) break;
    avg = beta * avg + (1 - beta) * l;
    const double smooth = avg / (1 - std::pow(beta, k + 1));
    curve.lr.push_back(lr);
    curve.loss.push_back(smooth);
    best = std::min(best, smooth);
    if (k > 5 && smooth > 4 * best) break;  // diverged: the rest of the sweep says nothing
    if (opts_.max_seconds > 0 && seconds_since(sweep_t0) >= opts_.max_seconds) break;
  }
  curve.seconds = seconds_since(sweep_t0);
  return curve;
}

double TrainingRun::keep_if_best(int epoch, bool frozen,
                                 const std::vector<double>& per_session) {
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

void TrainingRun::print_progress(int epoch, bool frozen, double loss, double mean_r2,
                                 double epoch_s) const {
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

}  // namespace spikeflow::models::detail
