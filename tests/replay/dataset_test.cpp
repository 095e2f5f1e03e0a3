#include "replay/dataset.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "core/chunk_flags.h"
#include "replay/mat_session_reader.h"
#include "replay/synth_session.h"
#include "test_util.h"

namespace spikeflow::replay {
namespace {

using core::ChunkFlag;
constexpr int64_t kMs = 1'000'000;

// 3 units, 0..250 ms; behaviour vx = t in seconds, vy = -t, sampled every 20 ms from 10 ms.
Session crafted() {
  Session s;
  s.units = {{1, 1}, {2, 1}, {3, 1}};
  s.spike_times_ns = {{1 * kMs, 60 * kMs, 99 * kMs}, {60 * kMs, 160 * kMs}, {10 * kMs}};
  s.behavior_names = {"vx", "vy"};
  for (int64_t t = 10; t < 250; t += 20) {
    s.behavior_t_ns.push_back(t * kMs);
    s.behavior.push_back(static_cast<float>(t) * 1e-3f);
    s.behavior.push_back(-static_cast<float>(t) * 1e-3f);
  }
  s.trials = {{0, 100 * kMs, 4}, {120 * kMs, 200 * kMs, 5}};
  s.start_ns = 0;
  s.end_ns = 250 * kMs;
  return s;
}

TEST(DatasetTest, chunks_tokens_targets_and_trials) {
  const Session s = crafted();
  DatasetOptions o;
  const auto ds = build_dataset(s, o);
  ASSERT_EQ(ds.size(), 5u);  // [0,50) ... [200,250)
  EXPECT_EQ(ds.width_ns, 50 * kMs);
  EXPECT_EQ(ds.output_dim, 2);
  EXPECT_EQ(ds.output_names, s.behavior_names);
  ASSERT_EQ(ds.units.size(), 3u);
  EXPECT_EQ(ds.targets.size(), 10u);

  // chunk 0: spikes at 1 ms (u0), 10 ms (u2), in time order
  EXPECT_EQ(ds.chunks[0].seq, 0);
  EXPECT_EQ(ds.chunks[0].unit, (std::vector<int32_t>{0, 2}));
  EXPECT_FLOAT_EQ(ds.chunks[0].offset_s[0], 0.001f);
  EXPECT_FLOAT_EQ(ds.chunks[0].offset_s[1], 0.010f);
  // chunk 1: 60 ms u0 then u1 (tie by unit index), 99 ms u0
  EXPECT_EQ(ds.chunks[1].unit, (std::vector<int32_t>{0, 1, 0}));
  EXPECT_FLOAT_EQ(ds.chunks[1].offset_s[2], 0.049f);
  EXPECT_TRUE(ds.chunks[2].empty());
  EXPECT_TRUE(core::has_flag(ds.chunks[2].flags, ChunkFlag::kEmpty));
  EXPECT_FALSE(core::has_flag(ds.chunks[3].flags, ChunkFlag::kEmpty));
  EXPECT_EQ(ds.chunks[4].start_ns, 200 * kMs);
  EXPECT_EQ(ds.chunks[4].end_ns, 250 * kMs);

  // Targets at the centres (25, 75, ... ms): vx = t s inside the samples, clamped outside.
  EXPECT_FLOAT_EQ(ds.target(0)[0], 0.025f);
  EXPECT_FLOAT_EQ(ds.target(0)[1], -0.025f);
  EXPECT_FLOAT_EQ(ds.target(3)[0], 0.175f);
  EXPECT_FLOAT_EQ(ds.target(4)[0], 0.225f);
  Session late = s;
  late.end_ns = 300 * kMs;
  EXPECT_FLOAT_EQ(build_dataset(late, o).target(5)[0], 0.230f);  // clamped to the last sample

  // Trials hold the centres 25, 75 (trial 0), 125, 175 (trial 1); 225 is outside.
  EXPECT_EQ(ds.trial, (std::vector<int32_t>{0, 0, 1, 1, -1}));
}

TEST(DatasetTest, range_unit_order_and_dropped_spikes) {
  const Session s = crafted();
  DatasetOptions o;
  o.from_ns = 70 * kMs;                     // chunk holding 70 ms = chunk 1
  o.to_ns = 199 * kMs;                      // last chunk ending <= 199 ms = chunk 2 ([100,150))
  o.unit_order = {{2, 1}, {1, 1}, {9, 9}};  // unit (3,1) is not in the model
  DatasetStats st;
  const auto ds = build_dataset(s, o, &st);
  ASSERT_EQ(ds.size(), 2u);
  EXPECT_EQ(ds.chunks[0].seq, 1);
  EXPECT_EQ(ds.chunks[1].seq, 2);
  EXPECT_EQ(ds.chunks[0].unit, (std::vector<int32_t>{1, 0, 1}));
  EXPECT_EQ(ds.units.size(), 3u);
  EXPECT_EQ(st.dropped_spikes, 0u);  // (3,1)'s spike at 10 ms is outside the range

  o.from_ns = INT64_MIN;
  o.to_ns = INT64_MAX;
  build_dataset(s, o, &st);
  EXPECT_EQ(st.dropped_spikes, 1u);

  o.to_ns = 40 * kMs;  // no whole chunk
  EXPECT_EQ(build_dataset(s, o).size(), 0u);
  o.width_ns = 0;
  EXPECT_THROW(build_dataset(s, o), std::invalid_argument);
}

TEST(DatasetTest, unaligned_session_start_takes_the_chunk_holding_it) {
  Session s = crafted();
  s.start_ns = 30 * kMs;
  s.spike_times_ns = {{60 * kMs}, {}, {}};
  const auto ds = build_dataset(s, DatasetOptions{});
  ASSERT_FALSE(ds.chunks.empty());
  EXPECT_EQ(ds.chunks.front().start_ns, 0);
}

TEST(DatasetTest, synthetic_offsets_in_range_and_all_spikes_tokenized) {
  SynthOptions so;
  so.num_units = 30;
  so.duration_s = 20.0;
  const Session s = synthesize_session(so);
  DatasetOptions o;
  o.width_ns = 20 * kMs;
  const auto ds = build_dataset(s, o);
  ASSERT_EQ(ds.size(), 1000u);
  size_t tokens = 0;
  for (size_t c = 0; c < ds.size(); ++c) {
    const auto& ch = ds.chunks[c];
    EXPECT_EQ(ch.seq, static_cast<int64_t>(c));
    ASSERT_EQ(ch.unit.size(), ch.offset_s.size());
    for (size_t i = 0; i < ch.size(); ++i) {
      EXPECT_GE(ch.offset_s[i], 0.0f);
      EXPECT_LT(ch.offset_s[i], 0.020f);
      if (i > 0) {
        EXPECT_GE(ch.offset_s[i], ch.offset_s[i - 1]);
      }
    }
    tokens += ch.size();
  }
  EXPECT_EQ(tokens, s.num_spikes());
}

void expect_rebinning_gives_counts(const std::string& path) {
  const Session s = read_mat_session(path, MatReadOptions{});
  const auto counts = testing::read_concatenated_counts(path, "trial_data", "M1_spikes");
  DatasetOptions o;
  o.width_ns = 50 * kMs;
  const auto ds = build_dataset(s, o);
  ASSERT_EQ(ds.size(), counts.size());
  size_t mismatches = 0;
  std::vector<int> row(s.num_units());
  for (size_t c = 0; c < ds.size(); ++c) {
    std::fill(row.begin(), row.end(), 0);
    for (int32_t u : ds.chunks[c].unit) ++row[static_cast<size_t>(u)];
    if (row != counts[c]) ++mismatches;
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST(DatasetTest, rebinning_expanded_mat_spikes_gives_the_counts_back) {
  testing::TempDir dir;
  const std::string path = dir.file("small.mat");
  testing::write_trial_mat(path, MAT_FT_MAT5, "trial_data", testing::small_trials());
  expect_rebinning_gives_counts(path);
}

TEST(DatasetTest, rebinning_shared_recording_gives_the_counts_back) {
  const std::string path = testing::shared_mat_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "shared recording absent: " << path;
  expect_rebinning_gives_counts(path);
}

}  // namespace
}  // namespace spikeflow::replay
