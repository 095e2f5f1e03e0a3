// The one pacing rule the sender and session replay share (pipeline/pacer.h), on a virtual host
// clock: which events each packet carries, its device clock, when it is due, and where the
// stream ends. No wall clock is read.
#include "pipeline/pacer.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace spikeflow::pipeline {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kHost0 = 5'000'000'000;

/// A host clock that only moves when the pacer waits on it; records every wait.
struct VirtualClock {
  int64_t now = kHost0;
  std::vector<int64_t> waits;
  PacerClock clock() {
    return {[this] { return now; },
            [this](int64_t until) {
              waits.push_back(until);
              now = std::max(now, until);
            }};
  }
};

std::vector<core::SpikeEvent> events_at(const std::vector<int64_t>& times) {
  std::vector<core::SpikeEvent> out;
  for (size_t i = 0; i < times.size(); ++i) {
    core::SpikeEvent e{};
    e.t_ns = times[i];
    e.channel = static_cast<uint32_t>(i);
    out.push_back(e);
  }
  return out;
}

struct Played {
  int64_t device_ns, release_host_ns;
  std::vector<int64_t> event_times;
};

std::vector<Played> play(Pacer& pacer) {
  std::vector<Played> out;
  while (const auto p = pacer.next()) {
    Played x{p->device_time_ns, p->release_host_ns, {}};
    for (const auto& e : p->events) x.event_times.push_back(e.t_ns);
    out.push_back(x);
  }
  return out;
}

TEST(PacerTest, paced_packets_carry_the_events_up_to_their_clock_and_are_due_at_offset_over_speed) {
  const auto events = events_at({1 * kMs / 2, 1 * kMs, 2 * kMs + kMs / 2, 4 * kMs + kMs / 2});
  VirtualClock vc;
  Pacer pacer(events, {0, 5 * kMs, 2 * kMs, /*speed=*/2.0, false}, vc.clock());
  EXPECT_EQ(pacer.host_start_ns(), kHost0);
  const auto played = play(pacer);
  // Packets at 2, 4, 6 ms: the last is the first whose clock reaches the end (5 ms).
  ASSERT_EQ(played.size(), 3u);
  EXPECT_EQ(played[0].device_ns, 2 * kMs);
  EXPECT_EQ(played[1].device_ns, 4 * kMs);
  EXPECT_EQ(played[2].device_ns, 6 * kMs);
  EXPECT_EQ(played[0].event_times, (std::vector<int64_t>{kMs / 2, kMs}));
  EXPECT_EQ(played[1].event_times, (std::vector<int64_t>{2 * kMs + kMs / 2}));
  EXPECT_EQ(played[2].event_times, (std::vector<int64_t>{4 * kMs + kMs / 2}));
  // At 2x, device time t is due at host0 + t / 2, and the packet is released then.
  EXPECT_EQ(vc.waits, (std::vector<int64_t>{kHost0 + 1 * kMs, kHost0 + 2 * kMs, kHost0 + 3 * kMs}));
  for (const auto& p : played) EXPECT_EQ(p.release_host_ns, kHost0 + p.device_ns / 2);
}

TEST(PacerTest, clamped_last_packet_carries_the_end_clock) {
  const auto events = events_at({3 * kMs, 5 * kMs});
  VirtualClock vc;
  Pacer pacer(events, {1 * kMs, 5 * kMs, 3 * kMs, 1.0, /*clamp_to_end=*/true}, vc.clock());
  const auto played = play(pacer);
  ASSERT_EQ(played.size(), 2u);
  EXPECT_EQ(played[0].device_ns, 4 * kMs);
  EXPECT_EQ(played[1].device_ns, 5 * kMs);  // 7 ms, clamped
  EXPECT_EQ(played[1].event_times, (std::vector<int64_t>{5 * kMs}));
  EXPECT_EQ(vc.waits, (std::vector<int64_t>{kHost0 + 3 * kMs, kHost0 + 4 * kMs}));
}

TEST(PacerTest, unpaced_never_waits_and_carries_the_device_clock_onto_the_host_clock) {
  const auto events = events_at({10 * kMs, 11 * kMs, 19 * kMs});
  VirtualClock vc;
  Pacer pacer(events, {10 * kMs, 20 * kMs, 5 * kMs, /*speed=*/0.0, false}, vc.clock());
  const auto played = play(pacer);
  ASSERT_EQ(played.size(), 2u);
  EXPECT_TRUE(vc.waits.empty());
  EXPECT_EQ(played[0].release_host_ns, kHost0 + 5 * kMs);
  EXPECT_EQ(played[1].release_host_ns, kHost0 + 10 * kMs);
  EXPECT_EQ(played[0].event_times, (std::vector<int64_t>{10 * kMs, 11 * kMs}));
  EXPECT_EQ(played[1].event_times, (std::vector<int64_t>{19 * kMs}));
}

TEST(PacerTest, a_caller_behind_schedule_is_not_made_to_wait) {
  const auto events = events_at({});
  VirtualClock vc;
  Pacer pacer(events, {0, 3 * kMs, kMs, 1.0, false}, vc.clock());
  vc.now += 10 * kMs;  // the caller was busy past every due time
  const auto played = play(pacer);
  ASSERT_EQ(played.size(), 3u);
  EXPECT_TRUE(vc.waits.empty());
  for (const auto& p : played) EXPECT_EQ(p.release_host_ns, kHost0 + 10 * kMs);
}

TEST(PacerTest, every_event_is_released_once_in_order_including_those_before_the_start) {
  const auto events = events_at({-5 * kMs, 0, 1, kMs - 1, kMs, kMs + 1, 7 * kMs, 7 * kMs, 9 * kMs});
  VirtualClock vc;
  Pacer pacer(events, {0, 9 * kMs, kMs, 0.0, false}, vc.clock());
  std::vector<int64_t> all;
  size_t packets = 0;
  while (const auto p = pacer.next()) {
    ++packets;
    for (const auto& e : p->events) {
      EXPECT_LE(e.t_ns, p->device_time_ns);
      all.push_back(e.t_ns);
    }
  }
  EXPECT_EQ(packets, 9u);
  std::vector<int64_t> want;
  for (const auto& e : events) want.push_back(e.t_ns);
  EXPECT_EQ(all, want);
}

TEST(PacerTest, nothing_is_played_when_the_start_is_at_or_past_the_end) {
  const auto events = events_at({kMs});
  VirtualClock vc;
  Pacer pacer(events, {2 * kMs, 2 * kMs, kMs, 1.0, true}, vc.clock());
  EXPECT_FALSE(pacer.next().has_value());
  EXPECT_TRUE(vc.waits.empty());
}

TEST(PacerTest, a_non_positive_interval_is_an_error) {
  const auto events = events_at({});
  EXPECT_THROW(Pacer(events, {0, kMs, 0, 1.0, false}), std::invalid_argument);
}

}  // namespace
}  // namespace spikeflow::pipeline
