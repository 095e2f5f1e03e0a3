#include "models/training_data.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace spikeflow::models::detail {

using torch::Tensor;

namespace {

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

}  // namespace

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
  if (!(o.ema >= 0 && o.ema < 1)) errors.push_back("ema must be 0 (off) or in (0, 1)");
  if (o.search && (o.search_candidates < 2 || o.search_candidates > 8))
    errors.push_back("search_candidates must be in [2, 8]");
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

}  // namespace spikeflow::models::detail
