// The subscriber-side contract checker (pipeline/contract_checker.h) on crafted streams, and the
// sender's fault injection as plain values (pipeline/sender.h: DeviceClockFaults, multiply_rate).
#include "pipeline/contract_checker.h"

#include <gtest/gtest.h>

#include <cmath>

#include "core/chunk_flags.h"
#include "pipeline/sender.h"

namespace spikeflow::pipeline {
namespace {

core::Prediction pred(int64_t seq, uint32_t epoch, int64_t chunk, uint32_t flags = 0) {
  core::Prediction p;
  p.seq = seq;
  p.epoch = epoch;
  p.chunk_index = chunk;
  p.flags = flags;
  p.output_dim = 2;
  return p;
}

constexpr uint32_t kNewEpoch = static_cast<uint32_t>(core::ChunkFlag::kNewEpoch);

TEST(ContractCheckerTest, a_clean_stream_with_an_epoch_change_has_no_violation) {
  ContractChecker c;
  c.feed(pred(10, 0, 100), 1'000);  // joined mid-run: the baseline
  c.feed(pred(11, 0, 101, static_cast<uint32_t>(core::ChunkFlag::kClosedByDeadline)), 2'000);
  c.feed(pred(12, 1, 5, kNewEpoch), 5'000);
  c.feed(pred(13, 1, 6), 6'000);
  EXPECT_EQ(c.violations(), 0u) << c.summary();
  EXPECT_EQ(c.lost(), 0u);
  EXPECT_EQ(c.epochs_seen(), 2u);
  EXPECT_EQ(c.late_flagged(), 1u);
  EXPECT_EQ(c.max_silence_ns(), 3'000);
}

TEST(ContractCheckerTest, seq_gaps_are_losses_not_violations) {
  ContractChecker c;
  c.feed(pred(1, 0, 1));
  c.feed(pred(5, 0, 5));  // three lost; the chunk jump is explained by them
  c.feed(pred(6, 1, 0));  // contiguous with 5: its new_epoch flag is owed
  EXPECT_EQ(c.lost(), 3u);
  EXPECT_EQ(c.violations(ContractViolation::kChunkSkipped), 0u);
  EXPECT_EQ(c.violations(ContractViolation::kNewEpochMissing), 1u);
}

TEST(ContractCheckerTest, every_kind_of_violation_is_counted) {
  ContractChecker c;
  c.feed(pred(1, 0, 1));
  c.feed(pred(1, 0, 1));             // seq repeated, chunk duplicated
  c.feed(pred(2, 0, 3));             // seq +1 but a chunk skipped
  c.feed(pred(3, 0, 4, kNewEpoch));  // new_epoch inside an epoch
  auto nan = pred(4, 0, 5);
  nan.values[1] = std::nanf("");
  c.feed(nan);
  EXPECT_EQ(c.violations(ContractViolation::kSeqNotIncreasing), 1u);
  EXPECT_EQ(c.violations(ContractViolation::kChunkOrder), 1u);
  EXPECT_EQ(c.violations(ContractViolation::kDuplicateChunk), 1u);
  EXPECT_EQ(c.violations(ContractViolation::kChunkSkipped), 1u);
  EXPECT_EQ(c.violations(ContractViolation::kNewEpochSpurious), 1u);
  EXPECT_EQ(c.violations(ContractViolation::kNonFinite), 1u);
  EXPECT_EQ(c.violations(), 5u);  // the duplicate is inside chunk_order
  EXPECT_NE(c.summary().find("duplicate_chunk 1"), std::string::npos) << c.summary();
}

TEST(ContractCheckerTest, an_epoch_going_back_is_out_of_order) {
  ContractChecker c;
  c.feed(pred(1, 2, 10));
  c.feed(pred(2, 1, 11));
  EXPECT_EQ(c.violations(ContractViolation::kChunkOrder), 1u);
}

TEST(SenderFaultsTest, clock_jumps_and_device_restart_map_the_played_clock) {
  SendOptions o;
  EXPECT_EQ(DeviceClockFaults::from(o, 0).device_ns(123), 123);
  o.device_offset_ns = 20'000;
  o.clock_jump_at_ns = 3'000;
  o.clock_jump_ns = -20'000;
  const auto f = DeviceClockFaults::from(o, 1'000);
  EXPECT_EQ(f.device_ns(3'999), 23'999);
  EXPECT_EQ(f.device_ns(4'000), 4'000);  // 20 000 back at start + 3 000
  SendOptions r;
  r.restart_at_ns = 500;
  const auto g = DeviceClockFaults::from(r, 100);
  EXPECT_FALSE(g.restarted(599));
  EXPECT_EQ(g.device_ns(599), 599);
  EXPECT_TRUE(g.restarted(600));
  EXPECT_EQ(g.device_ns(650), 50);
}

TEST(SenderFaultsTest, rate_multiplier_repeats_every_event_within_its_span_in_order) {
  std::vector<core::SpikeEvent> ev;
  for (int i = 0; i < 100; ++i)
    ev.push_back({1'000'000 + i * 100'000, static_cast<uint32_t>(i % 7), 1, 0});
  const auto out = multiply_rate(ev, 10, 1'000'000, 3);
  ASSERT_EQ(out.size(), 1000u);
  for (size_t i = 1; i < out.size(); ++i) ASSERT_LE(out[i - 1].t_ns, out[i].t_ns);
  EXPECT_GE(out.front().t_ns, ev.front().t_ns);
  EXPECT_LE(out.back().t_ns, ev.back().t_ns);
  EXPECT_EQ(multiply_rate(ev, 1).size(), ev.size());
}

}  // namespace
}  // namespace spikeflow::pipeline
