#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/byte_io.h"
#include "stages/native_stream_framer.h"

namespace spikeflow::stages {
namespace {

std::vector<uint8_t> frames(uint64_t first_seq, size_t count) {
  std::vector<uint8_t> out;
  for (size_t k = 0; k < count; ++k) {
    NativePacketHeader h;
    h.stream_id = 3;
    h.sequence = first_seq + k;
    h.device_time_ns = 1'000'000 * static_cast<int64_t>(k + 1);
    std::vector<core::SpikeEvent> events;
    for (size_t e = 0; e < k % 3; ++e) {
      events.push_back({h.device_time_ns - static_cast<int64_t>(e), static_cast<uint32_t>(k),
                        static_cast<uint16_t>(e), 0});
    }
    encode_native_frame(h, events, out);
  }
  return out;
}

struct Collected {
  std::vector<int64_t> device_times;
  std::vector<core::SpikeEvent> events;
};

/// Feeds bytes cut at the given offsets; collects what the sink receives.
Collected feed_split(NativeStreamFramer& f, const std::vector<uint8_t>& bytes,
                     const std::vector<size_t>& cuts) {
  Collected c;
  auto sink = [&](core::EventBatch& b) {
    c.device_times.push_back(b.device_time_ns);
    c.events.insert(c.events.end(), b.events.begin(), b.events.end());
  };
  size_t from = 0;
  for (size_t cut : cuts) {
    f.feed(std::span<const uint8_t>(bytes.data() + from, cut - from), 0, sink);
    from = cut;
  }
  f.feed(std::span<const uint8_t>(bytes.data() + from, bytes.size() - from), 0, sink);
  return c;
}

uint64_t framing_errors(const NativeStreamFramer& f) {
  return f.stats().format_packet_drops[static_cast<size_t>(FormatPacketDrop::kFramingError)];
}

TEST(NativeStreamFramerTest, frame_is_length_prefixed_native_packet) {
  std::vector<uint8_t> out;
  NativePacketHeader h;
  const std::vector<core::SpikeEvent> events{{5, 1, 1, 0}};
  encode_native_frame(h, events, out);
  ASSERT_EQ(out.size(), kNativeFrameLengthBytes + kNativeHeaderBytes + kNativeEventBytes);
  EXPECT_EQ(out[0], kNativeHeaderBytes + kNativeEventBytes);  // L, little-endian
  EXPECT_EQ(out[1], 0);
  EXPECT_EQ(out[4], 'S');  // then the native packet itself
}

TEST(NativeStreamFramerTest, frames_split_arbitrarily_decode_identically) {
  const auto bytes = frames(100, 7);
  NativeStreamFramer whole;
  const auto expected = feed_split(whole, bytes, {});
  ASSERT_EQ(expected.device_times.size(), 7u);
  ASSERT_EQ(expected.events.size(), 0u + 1 + 2 + 0 + 1 + 2 + 0);
  EXPECT_EQ(whole.stats().packets_accepted, 7u);

  auto check = [&](NativeStreamFramer& f, const Collected& got, const std::string& what) {
    EXPECT_FALSE(f.broken()) << what;
    EXPECT_EQ(got.device_times, expected.device_times) << what;
    ASSERT_EQ(got.events.size(), expected.events.size()) << what;
    for (size_t i = 0; i < got.events.size(); ++i) {
      EXPECT_EQ(got.events[i].t_ns, expected.events[i].t_ns) << what;
      EXPECT_EQ(got.events[i].channel, expected.events[i].channel) << what;
      EXPECT_EQ(got.events[i].unit, expected.events[i].unit) << what;
    }
    EXPECT_EQ(f.stats().packets_accepted, 7u) << what;
    EXPECT_EQ(f.stats().packets_lost, 0u) << what;
  };
  for (size_t cut = 0; cut <= bytes.size(); ++cut) {
    NativeStreamFramer f;
    check(f, feed_split(f, bytes, {cut}), "cut at " + std::to_string(cut));
  }
  std::vector<size_t> every;
  for (size_t i = 1; i < bytes.size(); ++i) every.push_back(i);
  NativeStreamFramer f;
  check(f, feed_split(f, bytes, every), "one byte per read");
}

TEST(NativeStreamFramerTest, malformed_packet_in_a_good_frame_is_counted_and_stream_continues) {
  auto bytes = frames(0, 3);
  bytes[4] ^= 0xFF;  // first packet's magic
  NativeStreamFramer f;
  const auto got = feed_split(f, bytes, {});
  EXPECT_EQ(got.device_times.size(), 2u);
  EXPECT_EQ(f.stats().packet_drops[static_cast<size_t>(PacketDrop::kBadMagic)], 1u);
  EXPECT_FALSE(f.broken());
}

TEST(NativeStreamFramerTest, zero_or_oversized_length_breaks_the_stream) {
  for (uint32_t bad_length : {0u, static_cast<uint32_t>(kMaxUdpPayload + 1), 0xFFFF'FFFFu}) {
    auto bytes = frames(0, 2);
    const size_t second = frames(0, 1).size();  // where the second frame's length prefix is
    core::store_le<uint32_t>(bytes.data() + second, bad_length);
    const auto more = frames(2, 1);
    bytes.insert(bytes.end(), more.begin(), more.end());

    NativeStreamFramer f;
    size_t passed = 0;
    auto sink = [&](core::EventBatch&) { ++passed; };
    EXPECT_EQ(f.feed(std::span<const uint8_t>(bytes.data(), second + 2), 0, sink), 1u);
    EXPECT_FALSE(f.broken());
    EXPECT_EQ(f.feed(std::span<const uint8_t>(bytes.data() + second + 2, bytes.size() - second - 2),
                     0, sink),
              0u);
    EXPECT_TRUE(f.broken());
    EXPECT_EQ(framing_errors(f), 1u);
    EXPECT_EQ(passed, 1u);
    // Broken: later input is ignored, not decoded as garbage.
    EXPECT_EQ(f.feed(more, 0, sink), 0u);
    EXPECT_EQ(framing_errors(f), 1u);
    // A new connection starts clean; the counters are kept.
    f.reset();
    EXPECT_FALSE(f.broken());
    EXPECT_EQ(f.feed(more, 0, sink), 1u);
    EXPECT_EQ(framing_errors(f), 1u);
    EXPECT_EQ(f.stats().packets_accepted, 2u);
  }
}

TEST(NativeStreamFramerTest, largest_frame_is_accepted) {
  NativePacketHeader h;
  h.device_time_ns = 10;
  std::vector<core::SpikeEvent> events(kMaxEventsPerDatagram, core::SpikeEvent{1, 2, 3, 0});
  std::vector<uint8_t> bytes;
  encode_native_frame(h, events, bytes);
  NativeStreamFramer f;
  size_t n = 0;
  auto sink = [&](core::EventBatch& b) { n += b.events.size(); };
  const size_t half = bytes.size() / 2;
  f.feed(std::span<const uint8_t>(bytes.data(), half), 0, sink);
  f.feed(std::span<const uint8_t>(bytes.data() + half, bytes.size() - half), 0, sink);
  EXPECT_EQ(n, kMaxEventsPerDatagram);
  EXPECT_FALSE(f.broken());
}

}  // namespace
}  // namespace spikeflow::stages
