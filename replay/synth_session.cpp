// Synthetic center-out session.
//
// Task: back-to-back trials from t = 0, each of period P = 2 * reach_duration_s + hold_s:
//   [0, T)      reach out from the centre to target k at angle 2*pi*k/num_directions,
//   [T, 2T)     reach back to the centre along the same line,
//   [2T, P)     hold at the centre (zero velocity).
// Both reaches follow the minimum-jerk profile (Flash & Hogan 1985, J Neurosci 5:1688):
//   x(tau) = D (10 tau^3 - 15 tau^4 + 6 tau^5),  speed(tau) = (D/T) * 30 tau^2 (1 - tau)^2,
// peaking at 1.875 D/T at tau = 1/2. Targets come in shuffled blocks of num_directions so the
// directions are balanced. Time after the last whole trial is rest. One Trial per reach pair,
// [k*P, (k+1)*P), condition = target index.
//
// Neurons: cosine tuning (Georgopoulos et al. 1982, J Neurosci 2:1527) on velocity, leading it:
//   rate_i(t) = b_i * (1 + m * cos(theta(t+lead) - pd_i) * speed(t+lead) / peak_speed)
//             = b_i * (1 + m * (vx(t+lead) cos pd_i + vy(t+lead) sin pd_i) / peak_speed),
// clamped at 0 (never negative for m <= 1). Spikes are an inhomogeneous Poisson process drawn
// exactly by thinning (Lewis & Shedler 1979) against the bound b_i (1 + m) in continuous time,
// then rounded to ns.
//
// Randomness: one std::mt19937_64(seed), consumed in a fixed order (target blocks, then per unit
// pd and baseline, then spikes unit by unit), with our own uniform/exponential transforms (the
// std:: distributions are implementation-defined), so the same options give the same session.
#include "replay/synth_session.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <random>
#include <sstream>
#include <stdexcept>

#include "core/time.h"

namespace spikeflow::replay {
namespace {

/// Uniform in [0, 1) with 53 random bits.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

class ReachTask {
 public:
  ReachTask(const SynthOptions& o, std::vector<int> targets)
      : T_(o.reach_duration_s),
        period_(2.0 * o.reach_duration_s + o.hold_s),
        speed_scale_(o.reach_distance_cm / o.reach_duration_s * 30.0),
        targets_(std::move(targets)) {
    for (int k = 0; k < o.num_directions; ++k) {
      const double a = 2.0 * std::numbers::pi * k / o.num_directions;
      cos_.push_back(std::cos(a));
      sin_.push_back(std::sin(a));
    }
  }

  double period_s() const { return period_; }

  /// Hand velocity at t seconds, cm/s.
  void velocity(double t, double& vx, double& vy) const {
    vx = 0.0;
    vy = 0.0;
    if (t < 0.0) return;
    const double kf = std::floor(t / period_);
    if (kf >= static_cast<double>(targets_.size())) return;
    const auto k = static_cast<size_t>(kf);
    double ph = t - kf * period_;
    double sign = 1.0;
    if (ph >= 2.0 * T_) return;  // hold
    if (ph >= T_) {
      ph -= T_;
      sign = -1.0;
    }
    const double tau = ph / T_;
    const double om = 1.0 - tau;
    const double s = sign * speed_scale_ * tau * tau * om * om;
    vx = s * cos_[static_cast<size_t>(targets_[k])];
    vy = s * sin_[static_cast<size_t>(targets_[k])];
  }

 private:
  double T_;
  double period_;
  double speed_scale_;  // 30 D / T
  std::vector<int> targets_;
  std::vector<double> cos_;
  std::vector<double> sin_;
};

void check_options(const SynthOptions& o) {
  std::vector<std::string> bad;
  auto need = [&](bool ok, const std::string& msg) {
    if (!ok) bad.push_back(msg);
  };
  need(o.num_units >= 1 && o.num_units <= 65535,
       "num_units must be in [1, 65535], got " + std::to_string(o.num_units));
  need(o.duration_s > 0.0 && o.duration_s <= 1e7,
       "duration_s must be in (0, 1e7] s, got " + std::to_string(o.duration_s));
  need(o.min_rate_hz >= 0.0 && o.min_rate_hz <= 10000.0,
       "min_rate_hz must be in [0, 10000] Hz, got " + std::to_string(o.min_rate_hz));
  need(o.max_rate_hz >= 0.0 && o.max_rate_hz <= 10000.0,
       "max_rate_hz must be in [0, 10000] Hz, got " + std::to_string(o.max_rate_hz));
  need(!(o.max_rate_hz < o.min_rate_hz), "max_rate_hz (" + std::to_string(o.max_rate_hz) +
                                             ") must be >= min_rate_hz (" +
                                             std::to_string(o.min_rate_hz) + ")");
  need(o.modulation >= 0.0 && o.modulation <= 1.0,
       "modulation must be in [0, 1], got " + std::to_string(o.modulation));
  need(o.lead_s >= 0.0 && o.lead_s <= 10.0,
       "lead_s must be in [0, 10] s, got " + std::to_string(o.lead_s));
  need(o.reach_distance_cm > 0.0 && o.reach_distance_cm <= 1e4,
       "reach_distance_cm must be in (0, 1e4] cm, got " + std::to_string(o.reach_distance_cm));
  need(o.reach_duration_s >= 1e-3 && o.reach_duration_s <= 1e4,
       "reach_duration_s must be in [0.001, 1e4] s, got " + std::to_string(o.reach_duration_s));
  need(o.hold_s >= 0.0 && o.hold_s <= 1e4,
       "hold_s must be in [0, 1e4] s, got " + std::to_string(o.hold_s));
  need(o.num_directions >= 1 && o.num_directions <= 360,
       "num_directions must be in [1, 360], got " + std::to_string(o.num_directions));
  need(o.behavior_dt_s >= 1e-6 && o.behavior_dt_s <= o.duration_s,
       "behavior_dt_s must be in [1e-6 s, duration_s], got " + std::to_string(o.behavior_dt_s));
  if (bad.empty()) return;
  std::string msg = "synthesize_session: invalid options:";
  for (const auto& b : bad) msg += "\n  - " + b;
  throw std::invalid_argument(msg);
}

}  // namespace

Session synthesize_session(const SynthOptions& o) {
  check_options(o);
  std::mt19937_64 rng(o.seed);

  Session s;
  s.start_ns = 0;
  s.end_ns = std::llround(o.duration_s * 1e9);

  // Trials and their targets, in shuffled balanced blocks.
  const double period = 2.0 * o.reach_duration_s + o.hold_s;
  const auto num_trials = static_cast<size_t>(std::floor(o.duration_s / period));
  std::vector<int> targets;
  targets.reserve(num_trials);
  std::vector<int> block(static_cast<size_t>(o.num_directions));
  while (targets.size() < num_trials) {
    for (int k = 0; k < o.num_directions; ++k) block[static_cast<size_t>(k)] = k;
    for (size_t i = block.size(); i > 1; --i) {  // Fisher-Yates with our own uniform
      const auto j = static_cast<size_t>(uniform01(rng) * static_cast<double>(i));
      std::swap(block[i - 1], block[std::min(j, i - 1)]);
    }
    for (int k : block) {
      if (targets.size() < num_trials) targets.push_back(k);
    }
  }
  for (size_t k = 0; k < num_trials; ++k) {
    Trial t;
    t.start_ns = std::llround(static_cast<double>(k) * period * 1e9);
    t.end_ns = std::min<int64_t>(s.end_ns, std::llround(static_cast<double>(k + 1) * period * 1e9));
    t.condition = targets[k];
    s.trials.push_back(t);
  }
  const ReachTask task(o, targets);
  const double peak_speed = 1.875 * o.reach_distance_cm / o.reach_duration_s;

  // Behaviour: velocity every behavior_dt_s.
  s.behavior_names = {"vx", "vy"};
  const int64_t dt_ns = std::max<int64_t>(1, std::llround(o.behavior_dt_s * 1e9));
  const auto n_samples = static_cast<size_t>((s.end_ns + dt_ns - 1) / dt_ns);
  s.behavior_t_ns.resize(n_samples);
  s.behavior.resize(2 * n_samples);
  for (size_t i = 0; i < n_samples; ++i) {
    const int64_t t_ns = static_cast<int64_t>(i) * dt_ns;
    double vx = 0.0;
    double vy = 0.0;
    task.velocity(static_cast<double>(t_ns) * 1e-9, vx, vy);
    s.behavior_t_ns[i] = t_ns;
    s.behavior[2 * i] = static_cast<float>(vx);
    s.behavior[2 * i + 1] = static_cast<float>(vy);
  }

  // Units: preferred direction and baseline first (so they do not depend on spike counts).
  const auto n_units = static_cast<size_t>(o.num_units);
  std::vector<double> cos_pd(n_units);
  std::vector<double> sin_pd(n_units);
  std::vector<double> baseline(n_units);
  s.units.resize(n_units);
  for (size_t i = 0; i < n_units; ++i) {
    const double pd = 2.0 * std::numbers::pi * uniform01(rng);
    cos_pd[i] = std::cos(pd);
    sin_pd[i] = std::sin(pd);
    baseline[i] = o.min_rate_hz + (o.max_rate_hz - o.min_rate_hz) * uniform01(rng);
    s.units[i] = core::UnitKey{static_cast<uint32_t>(i + 1), 1};
  }

  // Spikes: exact thinning against the bound b (1 + m).
  s.spike_times_ns.resize(n_units);
  const double gain = o.modulation / peak_speed;
  for (size_t i = 0; i < n_units; ++i) {
    const double bound = baseline[i] * (1.0 + o.modulation);
    if (bound <= 0.0) continue;
    auto& out = s.spike_times_ns[i];
    out.reserve(static_cast<size_t>(baseline[i] * o.duration_s * 1.2) + 16);
    double t = 0.0;
    for (;;) {
      t += -std::log1p(-uniform01(rng)) / bound;
      if (t >= o.duration_s) break;
      double vx = 0.0;
      double vy = 0.0;
      task.velocity(t + o.lead_s, vx, vy);
      const double rate =
          std::max(0.0, baseline[i] * (1.0 + gain * (vx * cos_pd[i] + vy * sin_pd[i])));
      if (uniform01(rng) * bound < rate) {
        const int64_t t_ns = std::llround(t * 1e9);
        if (t_ns < s.end_ns) out.push_back(t_ns);
      }
    }
  }
  return s;
}

Session synthesize_corpus_session(const SynthCorpusOptions& c, int k) {
  std::vector<std::string> bad;
  if (c.num_sessions < 1 || c.num_sessions > 10000)
    bad.push_back("num_sessions must be in [1, 10000]");
  if (k < 0 || k >= c.num_sessions) bad.push_back("session index out of range");
  if (c.min_units < 1 || c.max_units < c.min_units || c.max_units > 65535)
    bad.push_back("units must satisfy 1 <= min_units <= max_units <= 65535");
  if (!(c.drift >= 0 && c.drift <= 1)) bad.push_back("drift must be in [0, 1]");
  if (!(c.turnover >= 0 && c.turnover <= 1)) bad.push_back("turnover must be in [0, 1]");
  if (!bad.empty()) {
    std::string msg = "synthesize_corpus_session: invalid options:";
    for (const auto& b : bad) msg += "\n  - " + b;
    throw std::invalid_argument(msg);
  }
  // Per-session draws from their own stream (session k never depends on the corpus size).
  std::mt19937_64 rng(c.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(k) + 1);
  SynthOptions o;
  o.duration_s = c.duration_s;
  o.num_units = c.min_units + static_cast<int>(uniform01(rng) * (c.max_units - c.min_units + 1));
  o.num_units = std::min(o.num_units, c.max_units);
  o.min_rate_hz = 2.0 + 6.0 * uniform01(rng);
  o.max_rate_hz = o.min_rate_hz + 10.0 + 20.0 * uniform01(rng);
  o.modulation = 0.5 + 0.45 * uniform01(rng);
  o.lead_s = 0.05 + 0.1 * uniform01(rng);
  o.seed = rng();
  Session s = synthesize_session(o);
  // Units carry this session's own channel numbers.
  const auto base = static_cast<uint32_t>(1000 * (k + 1));
  for (size_t i = 0; i < s.units.size(); ++i) s.units[i].channel = base + static_cast<uint32_t>(i);
  const double T = c.duration_s;
  for (auto& train : s.spike_times_ns) {
    // Gain moves linearly from g0 to g0 + slope, staying in [0, 1]: thinning keeps it Poisson.
    const double slope = c.drift * (2.0 * uniform01(rng) - 1.0);
    const double g0 = slope < 0 ? 1.0 : 1.0 - slope;
    double from = 0, to = T;
    if (uniform01(rng) < c.turnover) {
      const double cut = T * (0.2 + 0.6 * uniform01(rng));
      if (uniform01(rng) < 0.5)
        from = cut;
      else
        to = cut;  // appears late / vanishes early
    }
    std::vector<int64_t> kept;
    kept.reserve(train.size());
    for (int64_t t_ns : train) {
      const double t = static_cast<double>(t_ns) * 1e-9;
      const double gain = g0 + slope * t / T;
      const double u = uniform01(rng);
      if (t >= from && t < to && u < gain) kept.push_back(t_ns);
    }
    train = std::move(kept);
  }
  return s;
}

}  // namespace spikeflow::replay
