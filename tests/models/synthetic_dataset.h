// Small synthetic decoding datasets for the models tests: num_units cosine-tuned Poisson units
// driven by a smooth 2-D velocity (sum of random sinusoids); activity leads the target by
// lead_s. Seeded: the same arguments give the same dataset.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "core/decoding_dataset.h"
#include "models/trainer.h"

namespace spikeflow::models::testing {

struct SyntheticOptions {
  int num_units = 40;
  size_t num_chunks = 2400;  ///< 50 ms chunks
  int64_t first_seq = 0;
  double lead_s = 0.1;
  uint64_t seed = 1;         ///< velocity and spikes
  uint64_t tuning_seed = 7;  ///< unit tuning: the same across datasets of one "subject"
  uint32_t first_channel = 1;
};

inline core::DecodingDataset make_synthetic(const SyntheticOptions& o) {
  core::DecodingDataset d;
  d.width_ns = 50'000'000;
  const double w = 0.05;
  d.output_dim = 2;
  for (int i = 0; i < o.num_units; ++i) {
    d.units.push_back({o.first_channel + static_cast<uint32_t>(i), 1});
  }
  std::mt19937_64 tune(o.tuning_seed);
  std::uniform_real_distribution<double> uni(0.0, 1.0);
  std::vector<double> base(o.num_units), pd(o.num_units);
  for (int i = 0; i < o.num_units; ++i) {
    base[i] = 5.0 + 15.0 * uni(tune);
    pd[i] = 2.0 * M_PI * uni(tune);
  }
  std::mt19937_64 rng(o.seed);
  struct Sine {
    double amp, freq, phase;
  };
  std::vector<Sine> sines[2];
  for (auto& s : sines) {
    for (int k = 0; k < 4; ++k)
      s.push_back({5.0 + 5.0 * uni(rng), 0.15 + 0.6 * uni(rng), 2 * M_PI * uni(rng)});
  }
  auto vel = [&](int dim, double t) {
    double v = 0;
    for (const auto& s : sines[dim]) v += s.amp * std::sin(2 * M_PI * s.freq * t + s.phase);
    return v;
  };
  const double vmax = 20.0;
  for (size_t c = 0; c < o.num_chunks; ++c) {
    core::TokenChunk ch;
    ch.seq = o.first_seq + static_cast<int64_t>(c);
    ch.start_ns = ch.seq * d.width_ns;
    ch.end_ns = ch.start_ns + d.width_ns;
    const double t = static_cast<double>(ch.seq) * w;
    const double vx = vel(0, t + w / 2 + o.lead_s), vy = vel(1, t + w / 2 + o.lead_s);
    std::vector<std::pair<float, int32_t>> tokens;
    for (int i = 0; i < o.num_units; ++i) {
      const double drive = (vx * std::cos(pd[i]) + vy * std::sin(pd[i])) / vmax;
      const double rate = std::max(0.0, base[i] * (1.0 + 0.9 * drive));
      std::poisson_distribution<int> pois(rate * w);
      const int k = pois(rng);
      for (int j = 0; j < k; ++j) tokens.emplace_back(static_cast<float>(w * uni(rng)), i);
    }
    std::sort(tokens.begin(), tokens.end());
    for (const auto& [off, u] : tokens) {
      ch.unit.push_back(u);
      ch.offset_s.push_back(off);
    }
    d.chunks.push_back(std::move(ch));
    d.targets.push_back(static_cast<float>(vel(0, t + w / 2)));
    d.targets.push_back(static_cast<float>(vel(1, t + w / 2)));
    d.trial.push_back(-1);
  }
  return d;
}

/// A tiny model and a short, quiet, single-thread run: training tests that finish in seconds.
inline TrainOptions tiny_train_options(uint64_t seed) {
  TrainOptions o;
  o.model.dim = 16;
  o.model.rnn_hidden = 32;
  o.max_epochs = 4;
  o.patience = 100;
  o.batch_size = 8;
  o.threads = 1;
  o.progress = false;
  o.seed = seed;
  return o;
}

}  // namespace spikeflow::models::testing
