#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "stages/native_packet.h"
#include "stages/native_packet_decoder.h"

namespace spikeflow::stages {
namespace {

std::vector<uint8_t> packet(uint64_t seq, std::vector<core::SpikeEvent> events,
                            int64_t device_time = 1'000'000, uint32_t stream = 7) {
  std::vector<uint8_t> out;
  NativePacketHeader h;
  h.stream_id = stream;
  h.sequence = seq;
  h.device_time_ns = device_time;
  encode_native_packet(h, events, out);
  return out;
}

uint64_t drops(const NativePacketDecoder& d, PacketDrop r) {
  return d.stats().packet_drops[static_cast<size_t>(r)];
}

TEST(NativePacketTest, round_trip_preserves_every_field) {
  std::vector<core::SpikeEvent> events{{123, 5, 2, 0}, {999'999, 65535, 255, 0}};
  auto bytes = packet(42, events);
  ASSERT_EQ(bytes.size(), kNativeHeaderBytes + 2 * kNativeEventBytes);
  // Magic bytes spell SPFK on the wire.
  EXPECT_EQ(bytes[0], 'S');
  EXPECT_EQ(bytes[3], 'K');
  NativePacketDecoder d;
  core::EventBatch b;
  ASSERT_TRUE(d.decode(bytes, 77, b));
  EXPECT_EQ(b.arrival_host_ns, 77);
  EXPECT_EQ(b.device_time_ns, 1'000'000);
  ASSERT_EQ(b.events.size(), 2u);
  EXPECT_EQ(b.events[0].t_ns, 123);
  EXPECT_EQ(b.events[0].channel, 5u);
  EXPECT_EQ(b.events[0].unit, 2);
  EXPECT_EQ(b.events[1].channel, 65535u);
  EXPECT_EQ(b.events[1].unit, 255);
  EXPECT_EQ(d.stats().packets_accepted, 1u);
  EXPECT_EQ(d.stats().events_accepted, 2u);
}

TEST(NativePacketTest, malformed_datagrams_are_dropped_and_counted_by_reason) {
  NativePacketDecoder d;
  core::EventBatch b;
  auto good = packet(1, {{10, 1, 1, 0}});

  auto bad_magic = good;
  bad_magic[0] ^= 0xFF;
  EXPECT_FALSE(d.decode(bad_magic, 0, b));

  EXPECT_FALSE(d.decode(std::span<const uint8_t>(good.data(), 10), 0, b));  // truncated header

  auto truncated = good;
  truncated.pop_back();
  EXPECT_FALSE(d.decode(truncated, 0, b));

  auto trailing = good;
  trailing.push_back(0);
  EXPECT_FALSE(d.decode(trailing, 0, b));

  auto wrong_count = good;
  wrong_count[12] = 3;  // says 3 events, carries 1
  EXPECT_FALSE(d.decode(wrong_count, 0, b));

  auto oversized = good;
  oversized[12] = 0xFF;
  oversized[13] = 0xFF;
  EXPECT_FALSE(d.decode(oversized, 0, b));

  auto bad_version = good;
  bad_version[4] = 9;
  EXPECT_FALSE(d.decode(bad_version, 0, b));

  auto negative_time = packet(2, {}, -5);
  EXPECT_FALSE(d.decode(negative_time, 0, b));

  EXPECT_EQ(drops(d, PacketDrop::kBadMagic), 1u);
  EXPECT_EQ(drops(d, PacketDrop::kTruncatedHeader), 1u);
  EXPECT_EQ(drops(d, PacketDrop::kLengthMismatch), 3u);
  EXPECT_EQ(drops(d, PacketDrop::kOversized), 1u);
  EXPECT_EQ(drops(d, PacketDrop::kBadVersion), 1u);
  EXPECT_EQ(drops(d, PacketDrop::kBadPacketTime), 1u);
  EXPECT_EQ(d.stats().packets_accepted, 0u);
  // A good packet still decodes after all that.
  EXPECT_TRUE(d.decode(good, 0, b));
}

TEST(NativePacketTest, bad_events_are_dropped_individually) {
  NativePacketDecoder d;
  core::EventBatch b;
  auto bytes = packet(1, {{-1, 1, 1, 0}, {5, 1, 1, 0}, {2'000'000, 1, 1, 0}}, 1'000'000);
  ASSERT_TRUE(d.decode(bytes, 0, b));
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].t_ns, 5);
  EXPECT_EQ(d.stats().event_drops[static_cast<size_t>(EventDrop::kNegativeTime)], 1u);
  EXPECT_EQ(d.stats().event_drops[static_cast<size_t>(EventDrop::kAfterPacketTime)], 1u);
}

TEST(NativePacketTest, sequence_gaps_duplicates_and_reordering_are_tracked_per_stream) {
  NativePacketDecoder d;
  core::EventBatch b;
  EXPECT_TRUE(d.decode(packet(10, {}), 0, b));
  EXPECT_TRUE(d.decode(packet(11, {}), 0, b));
  EXPECT_TRUE(d.decode(packet(14, {}), 0, b));  // 12, 13 missing
  EXPECT_EQ(d.stats().packets_lost, 2u);
  EXPECT_TRUE(d.decode(packet(12, {}), 0, b));  // late, not lost after all
  EXPECT_EQ(d.stats().packets_lost, 1u);
  EXPECT_EQ(d.stats().packets_reordered, 1u);
  EXPECT_FALSE(d.decode(packet(12, {}), 0, b));  // duplicate
  EXPECT_FALSE(d.decode(packet(14, {}), 0, b));  // duplicate
  EXPECT_EQ(d.stats().packets_duplicate, 2u);
  // Another stream has its own numbering.
  EXPECT_TRUE(d.decode(packet(0, {}, 1, 8), 0, b));
  EXPECT_EQ(d.stats().packets_lost, 1u);
  // A sender restarting from 0 is recognised, not dropped for ever.
  EXPECT_TRUE(d.decode(packet(1000, {}), 0, b));
  EXPECT_TRUE(d.decode(packet(0, {}), 0, b));
  EXPECT_TRUE(d.decode(packet(1, {}), 0, b));
  EXPECT_EQ(d.stats().stream_restarts, 1u);
}

// Found by native_packet_fuzz: with sequence UINT64_MAX, next_expected wrapped to 0 and the same
// packet again was taken for a new one 2^64 - 1 packets ahead (accepted, packets_lost huge).
// The input stays in the fuzz corpus.
TEST(NativePacketTest, fuzz_regression_sequence_max_then_duplicate_and_wrap) {
  std::ifstream in(std::string(SPIKEFLOW_SOURCE_DIR) +
                       "/tests/fuzz/corpus/native_packet_fuzz/regress-sequence-max",
                   std::ios::binary);
  const std::vector<uint8_t> crash((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  ASSERT_EQ(crash.size(), kNativeHeaderBytes + 5 * kNativeEventBytes);
  NativePacketDecoder d;
  core::EventBatch b;
  EXPECT_TRUE(d.decode(crash, 0, b));
  EXPECT_FALSE(d.decode(crash, 0, b));
  EXPECT_EQ(d.stats().packets_duplicate, 1u);
  EXPECT_EQ(d.stats().packets_lost, 0u);

  // The sequence wraps: UINT64_MAX - 1, UINT64_MAX, 0, 1 is in order, nothing lost.
  NativePacketDecoder w;
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  for (uint64_t seq : {max - 1, max, uint64_t{0}, uint64_t{1}})
    EXPECT_TRUE(w.decode(packet(seq, {}), 0, b));
  EXPECT_FALSE(w.decode(packet(max, {}), 0, b));
  EXPECT_EQ(w.stats().packets_lost, 0u);
  EXPECT_EQ(w.stats().packets_duplicate, 1u);
  EXPECT_EQ(w.stats().stream_restarts, 0u);
}

}  // namespace
}  // namespace spikeflow::stages
