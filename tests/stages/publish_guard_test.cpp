#include "stages/publish_guard.h"

#include <gtest/gtest.h>

#include <random>

namespace spikeflow::stages {
namespace {

core::Prediction pred(uint32_t epoch, int64_t chunk) {
  core::Prediction p;
  p.epoch = epoch;
  p.chunk_index = chunk;
  p.seq = chunk;
  return p;
}

TEST(PublishGuardTest, wire_seq_counts_publishes_across_epochs) {
  PublishGuard g;
  auto a = pred(0, 500), b = pred(0, 501), c = pred(1, 3), d = pred(1, 4);
  ASSERT_TRUE(g.admit(a));
  ASSERT_TRUE(g.admit(b));
  ASSERT_TRUE(g.admit(c));
  ASSERT_TRUE(g.admit(d));
  EXPECT_EQ(a.seq, 0);
  EXPECT_EQ(b.seq, 1);
  EXPECT_EQ(c.seq, 2);
  EXPECT_EQ(d.seq, 3);
  EXPECT_EQ(g.stats().epochs, 1u);
  EXPECT_EQ(g.stats().chunk_gaps, 0u);
}

TEST(PublishGuardTest, a_repeated_or_earlier_chunk_is_refused_and_costs_no_seq) {
  PublishGuard g;
  auto a = pred(2, 10), again = pred(2, 10), back = pred(2, 9), old_epoch = pred(1, 11),
       next = pred(2, 11);
  ASSERT_TRUE(g.admit(a));
  EXPECT_FALSE(g.admit(again));
  EXPECT_FALSE(g.admit(back));
  EXPECT_FALSE(g.admit(old_epoch));
  ASSERT_TRUE(g.admit(next));
  EXPECT_EQ(next.seq, 1);
  EXPECT_EQ(g.stats().refused, 3u);
}

// Property: whatever arrives, what is admitted has seq 0, 1, 2, ... and (epoch, chunk) strictly
// increasing.
TEST(PublishGuardTest, admitted_stream_is_strictly_ordered_for_random_input) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    PublishGuard g;
    int64_t want_seq = 0;
    uint32_t le = 0;
    int64_t lc = INT64_MIN;
    for (int i = 0; i < 5000; ++i) {
      auto p = pred(static_cast<uint32_t>(rng() % 4), static_cast<int64_t>(rng() % 100));
      if (!g.admit(p)) continue;
      ASSERT_EQ(p.seq, want_seq++) << "seed " << seed;
      ASSERT_TRUE(p.epoch > le || (p.epoch == le && p.chunk_index > lc)) << "seed " << seed;
      le = p.epoch;
      lc = p.chunk_index;
    }
  }
}

}  // namespace
}  // namespace spikeflow::stages
