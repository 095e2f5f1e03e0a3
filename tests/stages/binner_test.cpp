#include <gtest/gtest.h>

#include <vector>

#include "core/chunk_flags.h"
#include "core/time.h"
#include "stages/binner.h"

namespace spikeflow::stages {
namespace {

constexpr int64_t kMs = core::kNsPerMs;

core::EventBatch batch(int64_t device_time, std::vector<int64_t> times, int64_t arrival = 0) {
  core::EventBatch b;
  b.arrival_host_ns = arrival;
  b.device_time_ns = device_time;
  for (auto t : times) b.events.push_back({t, 1, 1, 0});
  return b;
}

BinnerOptions options() {
  BinnerOptions o;
  o.adaptive_grace = false;
  o.width_ns = 50 * kMs;
  o.lateness_ns = 2 * kMs;
  o.deadline_grace_ns = 5 * kMs;
  return o;
}

TEST(BinnerTest, chunk_closes_when_watermark_passes_end_plus_lateness) {
  Binner b(options());
  std::vector<core::RawChunk> out;
  b.push(batch(10 * kMs, {1 * kMs, 10 * kMs}), out);
  EXPECT_TRUE(out.empty());
  b.push(batch(51 * kMs, {51 * kMs}), out);
  EXPECT_TRUE(out.empty()) << "lateness window still open";
  b.push(batch(52 * kMs, {}), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].seq, 0);
  EXPECT_EQ(out[0].start_ns, 0);
  EXPECT_EQ(out[0].end_ns, 50 * kMs);
  EXPECT_EQ(out[0].events.size(), 2u);
  EXPECT_EQ(b.stats().chunks_by_watermark, 1u);
}

TEST(BinnerTest, every_chunk_is_emitted_once_in_order_even_when_empty) {
  Binner b(options());
  std::vector<core::RawChunk> out;
  b.push(batch(1 * kMs, {1 * kMs}, 1 * kMs), out);
  b.push(batch(260 * kMs, {255 * kMs}, 260 * kMs), out);  // chunks 1..4 silent
  ASSERT_EQ(out.size(), 5u);
  for (size_t i = 0; i < out.size(); ++i) EXPECT_EQ(out[i].seq, static_cast<int64_t>(i));
  EXPECT_FALSE(core::has_flag(out[0].flags, core::ChunkFlag::kEmpty));
  for (size_t i = 1; i < 5; ++i) EXPECT_TRUE(core::has_flag(out[i].flags, core::ChunkFlag::kEmpty));
}

TEST(BinnerTest, out_of_order_event_within_lateness_lands_in_its_chunk) {
  Binner b(options());
  std::vector<core::RawChunk> out;
  b.push(batch(10 * kMs, {10 * kMs}), out);
  b.push(batch(51 * kMs, {51 * kMs}), out);
  b.push(batch(51'500'000, {49 * kMs}), out);  // belongs to chunk 0, arrives after a chunk-1 spike
  b.push(batch(60 * kMs, {}), out);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].events.size(), 2u);
  EXPECT_EQ(out[0].events[1].t_ns, 49 * kMs);
  EXPECT_EQ(b.stats().late_events, 0u);
}

TEST(BinnerTest, late_event_is_counted_not_binned) {
  Binner b(options());
  std::vector<core::RawChunk> out;
  b.push(batch(60 * kMs, {1 * kMs}), out);
  ASSERT_EQ(out.size(), 1u);
  b.push(batch(61 * kMs, {20 * kMs, 55 * kMs}), out);
  EXPECT_EQ(b.stats().late_events, 1u);
  b.push(batch(110 * kMs, {}), out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].events.size(), 1u);
  EXPECT_TRUE(core::has_flag(out[1].flags, core::ChunkFlag::kHadLateEvents));
}

TEST(BinnerTest, far_future_event_is_counted_and_dropped) {
  auto o = options();
  o.max_future_ns = 500 * kMs;
  Binner b(o);
  std::vector<core::RawChunk> out;
  b.push(batch(1 * kMs, {1 * kMs}), out);
  b.push(batch(2 * kMs, {2 * kMs, 10'000 * kMs}), out);
  EXPECT_EQ(b.stats().future_events, 1u);
  EXPECT_TRUE(out.empty()) << "a bogus timestamp must not close chunks";
}

TEST(BinnerTest, silent_chunk_closes_on_its_host_deadline) {
  Binner b(options());
  std::vector<core::RawChunk> out;
  const int64_t offset = 1'000 * kMs;  // host = device + 1 s
  b.push(batch(10 * kMs, {5 * kMs}, 10 * kMs + offset), out);
  const int64_t deadline = 50 * kMs + 2 * kMs + 5 * kMs + offset;
  EXPECT_EQ(b.next_deadline_host_ns(), deadline);
  b.tick(deadline - 1, out);
  EXPECT_TRUE(out.empty());
  b.tick(deadline, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].seq, 0);
  EXPECT_TRUE(core::has_flag(out[0].flags, core::ChunkFlag::kClosedByDeadline));
  EXPECT_EQ(out[0].timing.trigger_arrival_ns, deadline);
  // The array stays silent: the next chunks close on their deadlines too, one per width.
  b.tick(deadline + 50 * kMs, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].seq, 1);
  EXPECT_TRUE(core::has_flag(out[1].flags, core::ChunkFlag::kEmpty));
  // A spike for chunk 0 arriving now is late.
  b.push(batch(60 * kMs, {40 * kMs}, 60 * kMs + offset), out);
  EXPECT_EQ(b.stats().late_events, 1u);
}

TEST(BinnerTest, adaptive_grace_follows_transit_jitter_within_bounds) {
  auto o = options();
  o.adaptive_grace = true;
  o.max_grace_ns = 25 * kMs;
  Binner b(o);
  std::vector<core::RawChunk> out;
  const int64_t offset = 1'000 * kMs;
  b.push(batch(1 * kMs, {1 * kMs}, 1 * kMs + offset), out);
  EXPECT_EQ(b.current_grace_ns(), 5 * kMs) << "no jitter seen: the configured grace";
  b.push(batch(2 * kMs, {}, 2 * kMs + offset + 8 * kMs), out);  // this packet arrived 8 ms late
  EXPECT_EQ(b.current_grace_ns(), 12 * kMs) << "1.5 x the jitter peak";
  EXPECT_EQ(b.next_deadline_host_ns(), 50 * kMs + 2 * kMs + 12 * kMs + offset);
  b.push(batch(3 * kMs, {}, 3 * kMs + offset + 100 * kMs), out);  // a huge stall: capped
  EXPECT_EQ(b.current_grace_ns(), 25 * kMs);
}

TEST(BinnerTest, flush_closes_open_chunks_at_end_of_stream) {
  Binner b(options());
  std::vector<core::RawChunk> out;
  b.push(batch(120 * kMs, {1 * kMs, 110 * kMs}), out);
  ASSERT_EQ(out.size(), 2u);
  b.flush(0, out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].seq, 2);
  EXPECT_TRUE(core::has_flag(out[2].flags, core::ChunkFlag::kEndOfStream));
  EXPECT_EQ(out[2].events.size(), 1u);
}

TEST(BinnerTest, persistent_clock_jump_re_anchors) {
  auto o = options();
  o.resync_after_batches = 3;
  o.deadline_enabled = false;
  Binner b(o);
  std::vector<core::RawChunk> out;
  b.push(batch(1 * kMs, {1 * kMs}), out);
  const int64_t jump = 3'600'000 * kMs;  // device restarted with a clock an hour ahead
  for (int i = 0; i < 3; ++i) b.push(batch(jump + i * kMs, {jump + i * kMs}), out);
  EXPECT_EQ(b.stats().resyncs, 1u);
  out.clear();
  b.push(batch(jump + 60 * kMs, {}), out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].seq, core::chunk_index(jump, 50 * kMs));
}

// The live contract (issue 11). A host stall closes chunks by deadline; the packets that were
// waiting arrive afterwards, behind the closed chunks but in order on the device clock. They are
// late data, not a clock jump: counted late, never a new epoch, never a chunk twice.
TEST(BinnerTest, packets_delayed_by_a_stall_are_late_not_a_clock_jump) {
  auto o = options();
  o.resync_after_batches = 3;
  Binner b(o);
  std::vector<core::RawChunk> out;
  const int64_t offset = 1'000 * kMs;
  for (int64_t t = 0; t <= 100 * kMs; t += kMs) b.push(batch(t, {t}, t + offset), out);
  // The host stops for 3 s; on resume the ticker runs first and closes 60 chunks by deadline.
  for (int64_t h = 100 * kMs; h <= 3'100 * kMs; h += kMs) b.tick(h + offset, out);
  const int64_t closed_before = out.back().seq;
  // Then the 3 s of buffered packets arrive, all at once.
  for (int64_t t = 101 * kMs; t <= 3'100 * kMs; t += kMs)
    b.push(batch(t, {t}, 3'100 * kMs + offset), out);
  EXPECT_EQ(b.stats().resyncs, 0u);
  EXPECT_EQ(b.epoch(), 0u);
  EXPECT_GT(b.stats().late_events, 2'000u);
  for (size_t i = 1; i < out.size(); ++i)
    ASSERT_EQ(out[i].seq, out[i - 1].seq + 1) << "no chunk twice, none back";
  EXPECT_GE(out.back().seq, closed_before);
}

// A device restart: the clock jumps back 20 s while heartbeats keep coming. Detected within
// resync_after_packets packets; the old epoch's open chunks are flushed, the new epoch's first
// chunk is flagged, and the held packets' spikes land in the new epoch (none lost).
TEST(BinnerTest, clock_jump_back_starts_a_new_epoch_within_a_few_packets) {
  auto o = options();
  o.resync_after_batches = 3;
  Binner b(o);
  std::vector<core::RawChunk> out;
  const int64_t offset = 30'000 * kMs;
  for (int64_t t = 20'000 * kMs; t <= 20'200 * kMs; t += kMs)
    b.push(batch(t, {t}, t + offset), out);
  const uint64_t binned_before = b.stats().events_binned;
  // Restart: device time 0 at host 20'201 ms + offset.
  const int64_t h0 = 20'201 * kMs + offset;
  for (int64_t t = 0; t < 3 * kMs; t += kMs) b.push(batch(t, {t}, h0 + t), out);
  EXPECT_EQ(b.epoch(), 1u);
  EXPECT_EQ(b.stats().clock_jumps_back, 1u);
  EXPECT_EQ(b.stats().events_binned, binned_before + 3) << "held spikes binned in the new epoch";
  for (int64_t t = 3 * kMs; t <= 120 * kMs; t += kMs) b.push(batch(t, {t}, h0 + t), out);
  size_t first_new = 0;
  while (first_new < out.size() && out[first_new].epoch == 0) ++first_new;
  ASSERT_LT(first_new, out.size());
  EXPECT_EQ(out[first_new].seq, 0);
  EXPECT_TRUE(core::has_flag(out[first_new].flags, core::ChunkFlag::kNewEpoch));
  EXPECT_EQ(out[first_new].events.size(), 50u);
  for (size_t i = first_new + 1; i < out.size(); ++i) {
    EXPECT_FALSE(core::has_flag(out[i].flags, core::ChunkFlag::kNewEpoch));
    EXPECT_EQ(out[i].seq, out[i - 1].seq + 1);
  }
  // Deadlines follow the new clock at once.
  EXPECT_EQ(b.next_deadline_host_ns(), (b.next_seq() + 1) * 50 * kMs + 2 * kMs + 5 * kMs + h0);
}

TEST(BinnerTest, clock_jump_forward_past_max_future_starts_a_new_epoch) {
  auto o = options();
  o.resync_after_batches = 3;
  Binner b(o);
  std::vector<core::RawChunk> out;
  for (int64_t t = 0; t <= 60 * kMs; t += kMs) b.push(batch(t, {}, t), out);
  const int64_t jump = 100'000 * kMs;
  for (int64_t i = 0; i < 3; ++i)
    b.push(batch(jump + i * kMs, {jump + i * kMs}, 61 * kMs + i * kMs), out);
  EXPECT_EQ(b.epoch(), 1u);
  EXPECT_EQ(b.stats().clock_jumps_forward, 1u);
  b.push(batch(jump + 60 * kMs, {}, 121 * kMs), out);
  EXPECT_TRUE(core::has_flag(out.back().flags, core::ChunkFlag::kNewEpoch));
  EXPECT_EQ(out.back().seq, core::chunk_index(jump, 50 * kMs));
  EXPECT_EQ(out.back().events.size(), 3u);
}

TEST(BinnerTest, one_corrupt_packet_costs_no_epoch) {
  auto o = options();
  o.resync_after_batches = 3;
  Binner b(o);
  std::vector<core::RawChunk> out;
  for (int64_t t = 0; t <= 200 * kMs; t += kMs) {
    b.push(batch(t, {t}, t), out);
    if (t == 100 * kMs) b.push(batch(-1, {90'000 * kMs}, t), out);  // one event from nowhere
  }
  EXPECT_EQ(b.epoch(), 0u);
  EXPECT_EQ(b.stats().stray_events, 1u);
  EXPECT_EQ(b.stats().events_in, b.stats().events_binned + b.stats().late_events +
                                     b.stats().future_events + b.stats().stray_events);
}

TEST(BinnerTest, deadline_chunks_say_when_no_packet_arrived) {
  auto o = options();
  o.no_source_timeout_ns = 200 * kMs;
  Binner b(o);
  std::vector<core::RawChunk> out;
  b.push(batch(10 * kMs, {5 * kMs}, 10 * kMs), out);
  for (int64_t h = 10 * kMs; h <= 1'000 * kMs; h += kMs) b.tick(h, out);
  ASSERT_GT(out.size(), 10u);
  EXPECT_FALSE(core::has_flag(out[0].flags, core::ChunkFlag::kNoSource));
  EXPECT_TRUE(core::has_flag(out.back().flags, core::ChunkFlag::kNoSource));
  EXPECT_GT(b.stats().no_source_chunks, 0u);
  for (size_t i = 1; i < out.size(); ++i) EXPECT_EQ(out[i].seq, out[i - 1].seq + 1);
}

TEST(BinnerTest, invalid_options_list_every_problem) {
  BinnerOptions o;
  o.width_ns = 0;
  o.lateness_ns = -1;
  o.resync_after_batches = 0;
  try {
    Binner b(o);
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("width"), std::string::npos);
    EXPECT_NE(m.find("lateness"), std::string::npos);
    EXPECT_NE(m.find("resync"), std::string::npos);
  }
}

}  // namespace
}  // namespace spikeflow::stages
