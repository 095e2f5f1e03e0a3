#include "replay/synth_session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numbers>
#include <stdexcept>

namespace spikeflow::replay {
namespace {

bool same_session(const Session& a, const Session& b) {
  if (a.units.size() != b.units.size()) return false;
  for (size_t i = 0; i < a.units.size(); ++i) {
    if (!(a.units[i] == b.units[i])) return false;
  }
  if (a.behavior.size() != b.behavior.size() ||
      std::memcmp(a.behavior.data(), b.behavior.data(), a.behavior.size() * sizeof(float)) != 0) {
    return false;
  }
  if (a.trials.size() != b.trials.size()) return false;
  for (size_t i = 0; i < a.trials.size(); ++i) {
    if (a.trials[i].start_ns != b.trials[i].start_ns || a.trials[i].end_ns != b.trials[i].end_ns ||
        a.trials[i].condition != b.trials[i].condition) {
      return false;
    }
  }
  return a.spike_times_ns == b.spike_times_ns && a.behavior_t_ns == b.behavior_t_ns &&
         a.behavior_names == b.behavior_names && a.start_ns == b.start_ns && a.end_ns == b.end_ns;
}

TEST(SynthSessionTest, same_seed_same_session_bit_for_bit) {
  SynthOptions o;
  o.num_units = 20;
  o.duration_s = 30.0;
  o.seed = 42;
  const Session a = synthesize_session(o);
  const Session b = synthesize_session(o);
  EXPECT_TRUE(same_session(a, b));
  EXPECT_NO_THROW(a.validate("synth"));
  o.seed = 43;
  const Session c = synthesize_session(o);
  EXPECT_FALSE(same_session(a, c));
  EXPECT_NE(a.spike_times_ns, c.spike_times_ns);
}

TEST(SynthSessionTest, units_are_keyed_channel_i_plus_one_unit_one) {
  SynthOptions o;
  o.num_units = 5;
  o.duration_s = 5.0;
  const Session s = synthesize_session(o);
  ASSERT_EQ(s.num_units(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(s.units[i].channel, i + 1);
    EXPECT_EQ(s.units[i].unit, 1);
  }
}

TEST(SynthSessionTest, mean_rates_lie_in_the_baseline_range) {
  // Out and back reaches cancel the cosine term on average, so each unit's mean rate is its
  // baseline, drawn in [min, max]; allow 4 Poisson standard deviations.
  SynthOptions o;
  o.num_units = 50;
  o.duration_s = 200.0;
  o.min_rate_hz = 5.0;
  o.max_rate_hz = 20.0;
  const Session s = synthesize_session(o);
  double lo = 1e9;
  double hi = 0;
  for (const auto& t : s.spike_times_ns) {
    const double rate = static_cast<double>(t.size()) / o.duration_s;
    const double tol = 4.0 * std::sqrt(rate / o.duration_s) + 0.3;  // + tuning's residual
    EXPECT_GE(rate, o.min_rate_hz - tol);
    EXPECT_LE(rate, o.max_rate_hz + tol);
    lo = std::min(lo, rate);
    hi = std::max(hi, rate);
  }
  EXPECT_LT(lo, 9.0);  // the range is actually used
  EXPECT_GT(hi, 16.0);

  o.modulation = 0.0;
  o.min_rate_hz = o.max_rate_hz = 30.0;
  const Session flat = synthesize_session(o);
  for (const auto& t : flat.spike_times_ns) {
    EXPECT_NEAR(static_cast<double>(t.size()) / o.duration_s, 30.0, 4.0 * std::sqrt(30.0 / 200.0));
  }
}

TEST(SynthSessionTest, velocity_is_minimum_jerk_out_and_back_with_trials) {
  SynthOptions o;
  o.num_units = 2;
  o.duration_s = 60.0;
  const Session s = synthesize_session(o);
  ASSERT_EQ(s.behavior_names, (std::vector<std::string>{"vx", "vy"}));
  const size_t n = s.behavior_t_ns.size();
  ASSERT_EQ(n, 6000u);  // 60 s at 10 ms
  ASSERT_EQ(s.behavior.size(), 2 * n);
  EXPECT_EQ(s.behavior_t_ns[1] - s.behavior_t_ns[0], 10'000'000);

  const double period = 2 * o.reach_duration_s + o.hold_s;  // 2.1 s
  ASSERT_EQ(s.trials.size(), static_cast<size_t>(std::floor(o.duration_s / period)));
  std::vector<int> per_condition(8, 0);
  for (const auto& t : s.trials) {
    ASSERT_GE(t.condition, 0);
    ASSERT_LT(t.condition, 8);
    ++per_condition[static_cast<size_t>(t.condition)];
  }
  for (int c : per_condition) EXPECT_GE(c, 3);  // 28 trials in balanced blocks of 8

  // Peak speed 1.875 D / T; displacement over the out-reach = D toward the target; zero in hold.
  const double peak = 1.875 * o.reach_distance_cm / o.reach_duration_s;
  double max_speed = 0;
  for (size_t i = 0; i < n; ++i) {
    max_speed = std::max<double>(max_speed, std::hypot(s.behavior[2 * i], s.behavior[2 * i + 1]));
  }
  EXPECT_NEAR(max_speed, peak, 0.01 * peak);
  const Trial& t0 = s.trials[0];
  double dx = 0;
  double dy = 0;
  for (size_t i = 0; i < 80; ++i) {  // 0.8 s out-reach
    dx += s.behavior[2 * i] * 0.01;
    dy += s.behavior[2 * i + 1] * 0.01;
  }
  const double angle = 2 * std::numbers::pi * t0.condition / 8;
  EXPECT_NEAR(dx, o.reach_distance_cm * std::cos(angle), 0.05);
  EXPECT_NEAR(dy, o.reach_distance_cm * std::sin(angle), 0.05);
  for (size_t i = 161; i < 210; ++i) {  // hold [1.6, 2.1) s
    EXPECT_EQ(s.behavior[2 * i], 0.0f);
    EXPECT_EQ(s.behavior[2 * i + 1], 0.0f);
  }
}

TEST(SynthSessionTest, activity_leads_movement_by_lead_s) {
  // Modulation energy sum_i (count_i - mean_i)^2 in 10 ms bins tracks speed (cosine tuning with
  // random preferred directions cancels in the plain population sum). Its cross-correlation with
  // speed(t + lag) must peak at lag ~ lead_s.
  SynthOptions o;
  o.num_units = 96;
  o.duration_s = 300.0;
  o.min_rate_hz = 20.0;
  o.max_rate_hz = 40.0;
  o.modulation = 1.0;
  o.lead_s = 0.1;
  o.seed = 3;
  const Session s = synthesize_session(o);
  const size_t n = s.behavior_t_ns.size();
  std::vector<double> energy(n, 0.0);
  std::vector<double> counts(n);
  for (const auto& t : s.spike_times_ns) {
    std::fill(counts.begin(), counts.end(), 0.0);
    for (int64_t x : t) counts[static_cast<size_t>(x / 10'000'000)] += 1.0;
    const double mean = static_cast<double>(t.size()) / static_cast<double>(n);
    for (size_t i = 0; i < n; ++i) energy[i] += (counts[i] - mean) * (counts[i] - mean);
  }
  // 50 ms moving average: the lag resolution stays 10 ms, the Poisson noise drops.
  std::vector<double> smooth(n, 0.0);
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = (i >= 2 ? i - 2 : 0); j <= std::min(n - 1, i + 2); ++j) smooth[i] += energy[j];
  }
  energy.swap(smooth);
  std::vector<double> speed(n);
  for (size_t i = 0; i < n; ++i) speed[i] = std::hypot(s.behavior[2 * i], s.behavior[2 * i + 1]);
  auto corr = [&](int lag) {
    double sa = 0, sb = 0, saa = 0, sbb = 0, sab = 0;
    size_t m = 0;
    for (size_t i = 0; i < n; ++i) {
      const long j = static_cast<long>(i) + lag;
      if (j < 0 || j >= static_cast<long>(n)) continue;
      const double a = energy[i];
      const double b = speed[static_cast<size_t>(j)];
      sa += a;
      sb += b;
      saa += a * a;
      sbb += b * b;
      sab += a * b;
      ++m;
    }
    const double dm = static_cast<double>(m);
    return (sab - sa * sb / dm) / std::sqrt((saa - sa * sa / dm) * (sbb - sb * sb / dm));
  };
  int best = 0;
  double best_r = -2;
  for (int lag = -40; lag <= 40; ++lag) {
    const double r = corr(lag);
    if (r > best_r) {
      best_r = r;
      best = lag;
    }
  }
  std::printf("modulation energy vs speed: peak r = %.3f at lag %d ms (r at 0 = %.3f)\n", best_r,
              best * 10, corr(0));
  EXPECT_GT(best_r, 0.25);
  EXPECT_GE(best, 7) << "peak lag " << best * 10 << " ms";
  EXPECT_LE(best, 13) << "peak lag " << best * 10 << " ms";
  EXPECT_GT(best_r, corr(0) + 0.02);
}

// Its speed is not asserted here (the suite runs on loaded machines); only its size.
TEST(SynthSessionTest, default_size_is_96_units_for_300_s) {
  SynthOptions o;
  const Session s = synthesize_session(o);
  EXPECT_EQ(s.num_units(), 96u);
  EXPECT_EQ(s.end_ns, 300'000'000'000);
  EXPECT_GT(s.num_spikes(), 0u);
}

TEST(SynthSessionTest, bad_options_are_all_listed) {
  SynthOptions o;
  o.num_units = 0;
  o.duration_s = -1;
  o.min_rate_hz = 30;
  o.max_rate_hz = 10;
  o.modulation = 1.5;
  o.behavior_dt_s = 0;
  o.num_directions = 0;
  o.reach_duration_s = NAN;
  try {
    synthesize_session(o);
    FAIL() << "expected std::invalid_argument";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    for (const char* key : {"num_units", "duration_s", "max_rate_hz (", "modulation",
                            "behavior_dt_s", "num_directions", "reach_duration_s"}) {
      EXPECT_NE(msg.find(key), std::string::npos) << key << " missing in: " << msg;
    }
  }
}

}  // namespace
}  // namespace spikeflow::replay

namespace spikeflow::replay {
namespace {

SynthCorpusOptions small_corpus() {
  SynthCorpusOptions c;
  c.num_sessions = 4;
  c.min_units = 10;
  c.max_units = 30;
  c.duration_s = 60;
  c.turnover = 0.5;
  c.seed = 5;
  return c;
}

TEST(SynthCorpusTest, sessions_are_repeatable_and_independent_of_the_corpus_size) {
  const auto c = small_corpus();
  SynthCorpusOptions bigger = c;
  bigger.num_sessions = 9;
  const Session a = synthesize_corpus_session(c, 2);
  const Session b = synthesize_corpus_session(bigger, 2);
  EXPECT_EQ(a.units, b.units);
  EXPECT_EQ(a.spike_times_ns, b.spike_times_ns);
  EXPECT_EQ(a.behavior, b.behavior);
}

TEST(SynthCorpusTest, sessions_share_the_task_but_not_the_units) {
  const auto c = small_corpus();
  std::vector<size_t> counts;
  for (int k = 0; k < c.num_sessions; ++k) {
    const Session s = synthesize_corpus_session(c, k);
    EXPECT_GE(s.num_units(), 10u);
    EXPECT_LE(s.num_units(), 30u);
    EXPECT_EQ(s.units.front().channel,
              1000u * static_cast<uint32_t>(k + 1));  // own channel numbers
    EXPECT_EQ(s.behavior_names, (std::vector<std::string>{"vx", "vy"}));
    counts.push_back(s.num_units());
    // Turnover: some units are silent for a stretch at the start or the end of the session.
    int late_or_early = 0;
    for (const auto& t : s.spike_times_ns) {
      if (t.empty()) continue;
      if (t.front() > 12'000'000'000 || t.back() < 48'000'000'000) ++late_or_early;
    }
    EXPECT_GT(late_or_early, 0) << "session " << k;
  }
  EXPECT_FALSE(std::all_of(counts.begin(), counts.end(), [&](size_t n) { return n == counts[0]; }));
}

TEST(SynthCorpusTest, bad_options_are_listed) {
  SynthCorpusOptions c = small_corpus();
  c.min_units = 40;
  c.drift = 2;
  try {
    synthesize_corpus_session(c, 7);
    FAIL();
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("session index"), std::string::npos) << m;
    EXPECT_NE(m.find("min_units"), std::string::npos) << m;
    EXPECT_NE(m.find("drift"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace spikeflow::replay
