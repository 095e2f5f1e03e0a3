#include "replay/session.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

namespace spikeflow::replay {
namespace {

Session valid_session() {
  Session s;
  s.units = {{1, 1}, {2, 1}, {2, 2}};
  s.spike_times_ns = {{10, 20, 30}, {20, 25}, {5, 20, 95}};
  s.behavior_names = {"vx", "vy"};
  s.behavior_t_ns = {0, 50, 100};
  s.behavior = {0, 0, 1, -1, 2, -2};
  s.trials = {{0, 40, 1}, {40, 100, 2}};
  s.start_ns = 0;
  s.end_ns = 100;
  return s;
}

std::string validate_message(const Session& s) {
  try {
    s.validate("session.sfs");
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return {};
}

TEST(SessionTest, valid_session_passes_and_counts_spikes) {
  const Session s = valid_session();
  EXPECT_NO_THROW(s.validate("x"));
  EXPECT_EQ(s.num_spikes(), 8u);
  EXPECT_EQ(s.num_units(), 3u);
  EXPECT_EQ(s.behavior_dim(), 2);
}

TEST(SessionTest, validate_reports_every_problem_at_once) {
  Session s = valid_session();
  s.units.push_back({1, 1});              // duplicate unit AND 4 units vs 3 spike lists
  s.spike_times_ns[0] = {30, 10};         // not ascending
  s.spike_times_ns[1] = {20, 100};        // 100 is outside [0, 100)
  s.behavior_t_ns = {0, 50, 50};          // not strictly ascending
  s.behavior = {0, 0, 1, NAN, 2, -2, 7};  // size mismatch and a NaN
  s.trials = {{0, 60, 1}, {40, 100, 2}};  // overlap
  const std::string msg = validate_message(s);
  ASSERT_FALSE(msg.empty());
  EXPECT_NE(msg.find("session.sfs"), std::string::npos) << msg;
  EXPECT_NE(msg.find("4 units but 3 spike-time lists"), std::string::npos) << msg;
  EXPECT_NE(msg.find("duplicate unit 3 (channel 1, unit 1)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not ascending"), std::string::npos) << msg;
  EXPECT_NE(msg.find("outside the session"), std::string::npos) << msg;
  EXPECT_NE(msg.find("behaviour has 7 values"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not strictly ascending"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not finite"), std::string::npos) << msg;
  EXPECT_NE(msg.find("overlap"), std::string::npos) << msg;
}

TEST(SessionTest, validate_rejects_reversed_extent_and_empty_trial) {
  Session s = valid_session();
  s.trials = {{10, 10, 0}};
  s.end_ns = -1;
  s.spike_times_ns = {{}, {}, {}};
  const std::string msg = validate_message(s);
  EXPECT_NE(msg.find("before its start"), std::string::npos) << msg;
  EXPECT_NE(msg.find("empty or reversed"), std::string::npos) << msg;
}

TEST(SessionTest, merged_events_are_time_ordered_with_ties_by_unit_index) {
  const Session s = valid_session();
  const auto ev = merged_events(s, 0, 100);
  ASSERT_EQ(ev.size(), 8u);
  const int64_t t[] = {5, 10, 20, 20, 20, 25, 30, 95};
  const uint32_t ch[] = {2, 1, 1, 2, 2, 2, 1, 2};
  const uint16_t un[] = {2, 1, 1, 1, 2, 1, 1, 2};
  for (size_t i = 0; i < ev.size(); ++i) {
    EXPECT_EQ(ev[i].t_ns, t[i]) << i;
    EXPECT_EQ(ev[i].channel, ch[i]) << i;
    EXPECT_EQ(ev[i].unit, un[i]) << i;
  }
}

TEST(SessionTest, merged_events_respects_half_open_range) {
  const Session s = valid_session();
  const auto ev = merged_events(s, 20, 30);  // [20, 30): 20, 20, 20, 25
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev.front().t_ns, 20);
  EXPECT_EQ(ev.back().t_ns, 25);
  EXPECT_TRUE(merged_events(s, 96, 1000).empty());
  const auto idx = merged_indexed_spikes(s, 0, 100);
  ASSERT_EQ(idx.size(), 8u);
  EXPECT_EQ(idx[0].unit_index, 2u);
}

TEST(SessionTest, split_time_uses_trial_starts_and_aligns_to_chunks) {
  Session s = valid_session();
  s.trials = {{0, 30, 0}, {30, 55, 0}, {55, 80, 0}, {80, 100, 0}};
  EXPECT_EQ(split_time_ns(s, 0.25, 10), 30);  // trial 1 starts at 30
  EXPECT_EQ(split_time_ns(s, 0.5, 10), 50);   // trial 2 starts at 55 -> chunk-aligned 50
  EXPECT_EQ(split_time_ns(s, 0.75, 10), 80);  // trial 3
  EXPECT_EQ(split_time_ns(s, 1.0, 10), 100);
  s.trials.clear();
  EXPECT_EQ(split_time_ns(s, 0.8, 10), 80);
  EXPECT_EQ(split_time_ns(s, 0.83, 10), 80);
  EXPECT_THROW(split_time_ns(s, 1.5, 10), std::invalid_argument);
  EXPECT_THROW(split_time_ns(s, 0.5, 0), std::invalid_argument);
}

}  // namespace
}  // namespace spikeflow::replay
