#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "stages/intan_spike_stream.h"

namespace spikeflow::stages {
namespace {

IntanSpikeStreamDecoder make(bool raw = false) {
  IntanOptions o;
  o.sample_rate_hz = 30'000;
  o.raw_spike_id = raw;
  return IntanSpikeStreamDecoder(o);
}

uint64_t format_drops(const IntanSpikeStreamDecoder& d, FormatPacketDrop r) {
  return d.stats().format_packet_drops[static_cast<size_t>(r)];
}
uint64_t format_event_drops(const IntanSpikeStreamDecoder& d, FormatEventDrop r) {
  return d.stats().format_event_drops[static_cast<size_t>(r)];
}

bool same(const core::SpikeEvent& a, const core::SpikeEvent& b) {
  return a.t_ns == b.t_ns && a.channel == b.channel && a.unit == b.unit;
}

/// Feeds bytes in pieces cut at the given offsets; returns every event produced.
std::vector<core::SpikeEvent> feed_split(IntanSpikeStreamDecoder& d,
                                         const std::vector<uint8_t>& bytes,
                                         const std::vector<size_t>& cuts) {
  std::vector<core::SpikeEvent> all;
  core::EventBatch b;
  size_t from = 0;
  auto piece = [&](size_t to) {
    d.feed(std::span<const uint8_t>(bytes.data() + from, to - from), 0, b);
    all.insert(all.end(), b.events.begin(), b.events.end());
    from = to;
  };
  for (size_t cut : cuts) piece(cut);
  piece(bytes.size());
  return all;
}

/// Records with garbage between them, including bytes that look like the start of a magic.
std::vector<uint8_t> mixed_stream() {
  std::vector<uint8_t> s;
  encode_intan_spike("A-000", 100, 0x40, s);
  encode_intan_spike("B-005", 100, 0x01, s);
  for (uint8_t g : {0x01, 0x0F, 0x71, 0xE2, 0x00, 0x0F, 0x71}) s.push_back(g);  // garbage
  encode_intan_spike("H-127", 130, 0x08, s);
  encode_intan_spike("C-010", 131, 0x80, s);  // artifact: dropped as noise
  encode_intan_spike("D-031", 200, 0x04, s);
  s.push_back(0x0F);  // a lone magic byte, then a record
  encode_intan_spike("A-001", 250, 0x02, s);
  return s;
}

TEST(IntanSpikeStreamTest, channel_names_map_reversibly) {
  auto ch = [](const char* n) { return intan_channel_from_name(std::span<const char, 5>(n, 5)); };
  EXPECT_EQ(ch("A-000"), 0u);
  EXPECT_EQ(ch("B-005"), 133u);
  EXPECT_EQ(ch("H-127"), 1023u);
  EXPECT_FALSE(ch("I-000"));  // port beyond H
  EXPECT_FALSE(ch("a-000"));
  EXPECT_FALSE(ch("A_000"));
  EXPECT_FALSE(ch("A-12x"));
  EXPECT_FALSE(ch("A-128"));  // a port has 128 channels
  for (uint32_t c = 0; c < kIntanPorts * kIntanChannelsPerPort; ++c) {
    const auto name = intan_channel_name(c);
    ASSERT_EQ(intan_channel_from_name(name), c);
  }
  EXPECT_EQ(std::string(intan_channel_name(133).data(), 5), "B-005");
}

TEST(IntanSpikeStreamTest, round_trip_of_records) {
  std::vector<uint8_t> s;
  encode_intan_spike("A-000", 0, 0x40, s);
  encode_intan_spike("B-005", 30'000, 0x01, s);
  encode_intan_spike("H-127", 45'001, 0x08, s);
  ASSERT_EQ(s.size(), 3 * kIntanSpikeRecordBytes);
  EXPECT_EQ(s[0], 0x0F);  // magic 0x3AE2710F, little-endian
  EXPECT_EQ(s[3], 0x3A);
  EXPECT_EQ(s[4], 'A');
  auto d = make();
  core::EventBatch b;
  d.feed(s, 77, b);
  EXPECT_EQ(b.arrival_host_ns, 77);
  ASSERT_EQ(b.events.size(), 3u);
  EXPECT_TRUE(same(b.events[0], {0, 0, 0, 0}));
  EXPECT_TRUE(same(b.events[1], {1'000'000'000, 133, 1, 0}));
  EXPECT_TRUE(same(b.events[2], {1'500'033'333, 1023, 4, 0}));
  EXPECT_EQ(b.device_time_ns, 1'500'033'333);
  EXPECT_EQ(d.stats().packets_accepted, 3u);
  EXPECT_EQ(d.stats().events_accepted, 3u);
  EXPECT_EQ(d.stats().resync_bytes, 0u);
}

TEST(IntanSpikeStreamTest, records_split_at_every_byte_boundary_give_identical_events) {
  const auto s = mixed_stream();
  auto whole = make();
  const auto expected = feed_split(whole, s, {});
  ASSERT_EQ(expected.size(), 5u);
  const IngestStats& ref = whole.stats();

  auto check = [&](IntanSpikeStreamDecoder& d, const std::vector<core::SpikeEvent>& got,
                   const std::string& what) {
    ASSERT_EQ(got.size(), expected.size()) << what;
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_TRUE(same(got[i], expected[i])) << what << " event " << i;
    EXPECT_EQ(d.stats().resync_bytes, ref.resync_bytes) << what;
    EXPECT_EQ(d.stats().format_packet_drops, ref.format_packet_drops) << what;
    EXPECT_EQ(d.stats().format_event_drops, ref.format_event_drops) << what;
    EXPECT_EQ(d.stats().packets_accepted, ref.packets_accepted) << what;
  };
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    auto d = make();
    check(d, feed_split(d, s, {cut}), "cut at " + std::to_string(cut));
  }
  for (size_t a = 0; a <= s.size(); a += 3) {
    for (size_t b = a; b <= s.size(); b += 5) {
      auto d = make();
      check(d, feed_split(d, s, {a, b}), "cuts at " + std::to_string(a) + "," + std::to_string(b));
    }
  }
  std::vector<size_t> every;
  for (size_t i = 1; i < s.size(); ++i) every.push_back(i);
  auto d = make();
  check(d, feed_split(d, s, every), "one byte per read");
}

TEST(IntanSpikeStreamTest, garbage_between_records_is_skipped_by_resync_and_counted) {
  auto d = make();
  core::EventBatch b;
  d.feed(mixed_stream(), 0, b);
  ASSERT_EQ(b.events.size(), 5u);
  EXPECT_EQ(b.events[2].channel, 1023u);
  EXPECT_EQ(b.events[3].channel, 3 * 128 + 31u);
  EXPECT_EQ(b.events[4].channel, 1u);
  EXPECT_EQ(d.stats().resync_bytes, 8u);                        // 7 garbage bytes + the lone 0x0F
  EXPECT_EQ(format_drops(d, FormatPacketDrop::kLostSync), 2u);  // two episodes
  EXPECT_EQ(format_event_drops(d, FormatEventDrop::kNoise), 1u);
  EXPECT_EQ(d.stats().packets_accepted, 6u);
  EXPECT_EQ(d.stats().events_accepted, 5u);
}

TEST(IntanSpikeStreamTest, bad_channel_names_are_counted_and_dropped) {
  auto d = make();
  std::vector<uint8_t> s;
  for (const char* bad : {"I-000", "A_000", "A-12x", "A-128", "A-0"})
    encode_intan_spike(bad, 10, 0x40, s);
  encode_intan_spike("A-007", 20, 0x40, s);
  core::EventBatch b;
  d.feed(s, 0, b);
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].channel, 7u);
  EXPECT_EQ(format_drops(d, FormatPacketDrop::kBadChannelName), 5u);
  EXPECT_EQ(d.stats().resync_bytes, 0u);  // framing was never lost
  EXPECT_EQ(b.device_time_ns, 666'666);   // 20 samples; the bad records carry no time
}

TEST(IntanSpikeStreamTest, spike_ids_map_to_units) {
  auto d = make();
  std::vector<uint8_t> s;
  for (uint8_t id : {0x40, 0x01, 0x02, 0x04, 0x08, 0x80, 0x81, 0x03, 0x00, 0x10}) {
    encode_intan_spike("A-000", 1, id, s);
  }
  core::EventBatch b;
  d.feed(s, 0, b);
  ASSERT_EQ(b.events.size(), 5u);
  for (uint16_t u = 0; u < 5; ++u) EXPECT_EQ(b.events[u].unit, u);
  EXPECT_EQ(format_event_drops(d, FormatEventDrop::kNoise), 2u);
  EXPECT_EQ(format_event_drops(d, FormatEventDrop::kUnknownUnit), 3u);

  auto raw = make(/*raw=*/true);
  raw.feed(s, 0, b);
  ASSERT_EQ(b.events.size(), 10u);
  EXPECT_EQ(b.events[5].unit, 0x80);
  EXPECT_EQ(raw.stats().format_events_dropped(), 0u);
}

TEST(IntanSpikeStreamTest, timestamp_wraparound_keeps_time_increasing) {
  auto d = make();
  std::vector<uint8_t> s;
  encode_intan_spike("A-000", 0xFFFF'FFF0u, 0x40, s);
  encode_intan_spike("A-001", 0xFFFF'FFF0u, 0x40, s);
  encode_intan_spike("A-000", 0x10, 0x40, s);
  core::EventBatch b;
  d.feed(s, 0, b);
  ASSERT_EQ(b.events.size(), 3u);
  const int64_t wrap = int64_t{1} << 32;
  EXPECT_EQ(b.events[0].t_ns, ((wrap - 0x10) * 1'000'000'000) / 30'000);
  EXPECT_EQ(b.events[1].t_ns, b.events[0].t_ns);
  EXPECT_EQ(b.events[2].t_ns, ((wrap + 0x10) * 1'000'000'000) / 30'000);
  EXPECT_EQ(d.stats().clock_wraps, 1u);
}

TEST(IntanSpikeStreamTest, partial_feed_has_no_device_time_and_reset_drops_the_carry) {
  auto d = make();
  std::vector<uint8_t> s;
  encode_intan_spike("A-002", 300, 0x40, s);
  core::EventBatch b;
  d.feed(std::span<const uint8_t>(s.data(), 9), 0, b);
  EXPECT_TRUE(b.events.empty());
  EXPECT_EQ(b.device_time_ns, -1);
  d.reset();  // reconnect: the 9 carried bytes belong to the old connection
  d.feed(s, 0, b);
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].channel, 2u);
  EXPECT_EQ(b.events[0].t_ns, 10'000'000);
  EXPECT_EQ(d.stats().resync_bytes, 0u);
}

TEST(IntanSpikeStreamTest, sample_rate_is_required) {
  EXPECT_FALSE(IntanOptions{}.validate().empty());
  EXPECT_THROW(IntanSpikeStreamDecoder{IntanOptions{}}, std::invalid_argument);
}

TEST(IntanSpikeStreamTest, rates_whose_fraction_would_overflow_the_ns_conversion_are_refused) {
  EXPECT_EQ(intan_rate_fraction(10000.0 / 3.0), (std::pair<int64_t, int64_t>{10000, 3}));
  EXPECT_EQ(intan_rate_fraction(1e9), (std::pair<int64_t, int64_t>{1'000'000'000, 1}));
  // 10000000001 / 1000: a numerator past INT64_MAX / 1e9 would overflow ticks_to_ns.
  EXPECT_EQ(intan_rate_fraction(10'000'000.001), (std::pair<int64_t, int64_t>{0, 0}));
  IntanOptions o;
  o.sample_rate_hz = 10'000'000.001;
  EXPECT_FALSE(o.validate().empty());
  EXPECT_THROW(IntanSpikeStreamDecoder{o}, std::invalid_argument);
}

// Found by intan_spike_stream_fuzz (UBSan): each record may step the unwrapped clock by up to
// 2^31 samples, so a few records at 1 Hz reach a count whose ns overflow int64 (signed overflow in
// ticks_to_ns). Such records are dropped as kBadPacketTime. The input (byte 0: the harness's
// options, 0xe2 = 1 Hz) stays in the fuzz corpus.
TEST(IntanSpikeStreamTest, fuzz_regression_clock_beyond_int64_ns_is_dropped) {
  std::ifstream in(std::string(SPIKEFLOW_SOURCE_DIR) +
                       "/tests/fuzz/corpus/intan_spike_stream_fuzz/regress-clock-overflow",
                   std::ios::binary);
  const std::vector<uint8_t> crash((std::istreambuf_iterator<char>(in)),
                                   std::istreambuf_iterator<char>());
  ASSERT_GT(crash.size(), 1u);
  ASSERT_EQ(crash[0], 0xe2);
  IntanOptions o;
  o.sample_rate_hz = 1;
  IntanSpikeStreamDecoder d(o);
  core::EventBatch b;
  d.feed(std::span<const uint8_t>(crash).subspan(1), 0, b);
  for (const auto& e : b.events) {
    EXPECT_GE(e.t_ns, 0);
    EXPECT_LE(e.t_ns, b.device_time_ns);
  }

  // The same by construction: +0x7FFFFFFF samples per record at 1 Hz passes 292 years (9.2e9 s).
  IntanSpikeStreamDecoder c(o);
  std::vector<uint8_t> s;
  uint32_t ts = 0;
  for (int i = 0; i < 6; ++i, ts += 0x7FFFFFFFu) encode_intan_spike("A-001", ts, 0x40, s);
  c.feed(s, 0, b);
  EXPECT_EQ(b.events.size(), 5u);  // 0 .. 4 * 0x7FFFFFFF s fit, 5 * 0x7FFFFFFF s do not
  EXPECT_EQ(c.stats().packet_drops[static_cast<size_t>(PacketDrop::kBadPacketTime)], 1u);
  EXPECT_EQ(c.stats().packets_accepted, 5u);
}

}  // namespace
}  // namespace spikeflow::stages
