#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "stages/blackrock_packet.h"
#include "stages/blackrock_packet_decoder.h"

namespace spikeflow::stages {
namespace {

using P = BlackrockProtocol;

BlackrockPacketDecoder make(P protocol, bool ticks = false) {
  BlackrockOptions o;
  o.protocol = protocol;
  o.time_units =
      ticks ? BlackrockTimeUnits::kTicks
            : (protocol == P::kV3_11 ? BlackrockTimeUnits::kAuto : BlackrockTimeUnits::kNs);
  return BlackrockPacketDecoder(o);
}

uint64_t format_drops(const BlackrockPacketDecoder& d, FormatPacketDrop r) {
  return d.stats().format_packet_drops[static_cast<size_t>(r)];
}
uint64_t format_event_drops(const BlackrockPacketDecoder& d, FormatEventDrop r) {
  return d.stats().format_event_drops[static_cast<size_t>(r)];
}

TEST(BlackrockPacketTest, header_layouts_match_cbproto) {
  std::vector<uint8_t> b;
  encode_blackrock_spike(P::kV4_1, 0x0102030405060708ull, 0x0A0B, 3, 2, b);
  ASSERT_EQ(b.size(), 16u + 20u);  // header + fPattern/nPeak/nValley + 2 samples
  EXPECT_EQ(b[0], 0x08);           // time, little-endian u64
  EXPECT_EQ(b[7], 0x01);
  EXPECT_EQ(b[8], 0x0B);  // chid
  EXPECT_EQ(b[9], 0x0A);
  EXPECT_EQ(b[10], 3);  // type (u16) = unit
  EXPECT_EQ(b[11], 0);
  EXPECT_EQ(b[12], 5);  // dlen (u16) = 20 / 4
  EXPECT_EQ(b[13], 0);

  b.clear();
  encode_blackrock_spike(P::kV4_0, 1, 7, 2, 2, b);
  ASSERT_EQ(b.size(), 36u);
  EXPECT_EQ(b[10], 2);  // type (u8)
  EXPECT_EQ(b[11], 5);  // dlen (u16, unaligned)
  EXPECT_EQ(b[12], 0);

  b.clear();
  encode_blackrock_spike(P::kV3_11, 0xAABBCCDD, 7, 1, 0, b);
  ASSERT_EQ(b.size(), 8u + 16u);
  EXPECT_EQ(b[0], 0xDD);  // time, u32
  EXPECT_EQ(b[3], 0xAA);
  EXPECT_EQ(b[4], 7);  // chid
  EXPECT_EQ(b[6], 1);  // type (u8)
  EXPECT_EQ(b[7], 4);  // dlen (u8) = cbPKTDLEN_SPKSHORT
}

TEST(BlackrockPacketTest, round_trip_several_packets_per_datagram_protocol_4) {
  for (P protocol : {P::kV4_1, P::kV4_0}) {
    std::vector<uint8_t> dgram;
    encode_blackrock_heartbeat(protocol, 1'000'000, dgram);
    encode_blackrock_spike(protocol, 1'000'100, 1, 0, 48, dgram);
    encode_blackrock_spike(protocol, 1'000'050, 256, 5, 0, dgram);
    encode_blackrock_spike(protocol, 1'000'200, 17, 2, 128, dgram);
    auto d = make(protocol);
    core::EventBatch b;
    ASSERT_TRUE(d.decode(dgram, 42, b));
    EXPECT_EQ(b.arrival_host_ns, 42);
    EXPECT_EQ(b.device_time_ns, 1'000'200);
    ASSERT_EQ(b.events.size(), 3u);
    EXPECT_EQ(b.events[0].t_ns, 1'000'100);
    EXPECT_EQ(b.events[0].channel, 1u);
    EXPECT_EQ(b.events[0].unit, 0);
    EXPECT_EQ(b.events[1].t_ns, 1'000'050);
    EXPECT_EQ(b.events[1].channel, 256u);
    EXPECT_EQ(b.events[1].unit, 5);
    EXPECT_EQ(b.events[2].channel, 17u);
    EXPECT_EQ(b.events[2].unit, 2);
    EXPECT_EQ(d.stats().packets_accepted, 1u);
    EXPECT_EQ(d.stats().events_accepted, 3u);
    EXPECT_EQ(d.stats().heartbeats, 1u);  // the heartbeat packet, though the datagram has spikes
    EXPECT_EQ(d.stats().format_packets_dropped(), 0u);
  }
}

TEST(BlackrockPacketTest, protocol_3_times_are_30khz_ticks_converted_exactly) {
  auto d = make(P::kV3_11);
  std::vector<uint8_t> dgram;
  encode_blackrock_spike(P::kV3_11, 1, 3, 1, 48, dgram);
  encode_blackrock_spike(P::kV3_11, 30'000, 4, 2, 0, dgram);
  encode_blackrock_spike(P::kV3_11, 45'001, 5, 3, 0, dgram);
  core::EventBatch b;
  ASSERT_TRUE(d.decode(dgram, 0, b));
  ASSERT_EQ(b.events.size(), 3u);
  EXPECT_EQ(b.events[0].t_ns, 33'333);  // 1e9 / 30000, rounded down
  EXPECT_EQ(b.events[1].t_ns, 1'000'000'000);
  EXPECT_EQ(b.events[2].t_ns, 1'500'033'333);  // 1.5 s + 1 tick
  EXPECT_EQ(b.device_time_ns, 1'500'033'333);
}

TEST(BlackrockPacketTest, protocol_3_clock_wraparound_keeps_time_increasing) {
  auto d = make(P::kV3_11);
  core::EventBatch b;
  const uint32_t before = 0xFFFF'FF00u;
  std::vector<uint8_t> dgram;
  encode_blackrock_spike(P::kV3_11, before, 1, 1, 0, dgram);
  ASSERT_TRUE(d.decode(dgram, 0, b));
  const int64_t t_before = b.events.at(0).t_ns;
  EXPECT_EQ(t_before, (int64_t{before} * 1'000'000'000) / 30'000);

  dgram.clear();
  encode_blackrock_heartbeat(P::kV3_11, 0x100, dgram);              // after the wrap
  encode_blackrock_spike(P::kV3_11, 0xFFFF'FFF0u, 2, 1, 0, dgram);  // late, from before it
  encode_blackrock_spike(P::kV3_11, 0x120, 3, 1, 0, dgram);
  ASSERT_TRUE(d.decode(dgram, 0, b));
  ASSERT_EQ(b.events.size(), 2u);
  const int64_t wrap = int64_t{1} << 32;
  EXPECT_EQ(b.events[0].t_ns, ((wrap - 0x10) * 1'000'000'000) / 30'000);
  EXPECT_EQ(b.events[1].t_ns, ((wrap + 0x120) * 1'000'000'000) / 30'000);
  EXPECT_GT(b.events[0].t_ns, t_before);
  EXPECT_GT(b.events[1].t_ns, b.events[0].t_ns);
  EXPECT_EQ(b.device_time_ns, b.events[1].t_ns);
  EXPECT_EQ(d.stats().clock_wraps, 1u);

  // A second wrap 2^32 ticks later is counted too (readings less than 2^31 ticks apart).
  dgram.clear();
  encode_blackrock_heartbeat(P::kV3_11, 0x7000'0000u, dgram);
  encode_blackrock_heartbeat(P::kV3_11, 0xE000'0000u, dgram);
  encode_blackrock_heartbeat(P::kV3_11, 0x10, dgram);
  ASSERT_TRUE(d.decode(dgram, 0, b));
  EXPECT_EQ(b.device_time_ns, ((2 * wrap + 0x10) * 1'000'000'000) / 30'000);
  EXPECT_EQ(d.stats().clock_wraps, 2u);
}

TEST(BlackrockPacketTest, noise_and_unknown_units_are_dropped_but_advance_time) {
  for (P protocol : {P::kV4_1, P::kV3_11}) {
    auto d = make(protocol);
    std::vector<uint8_t> dgram;
    encode_blackrock_spike(protocol, 100, 1, 1, 0, dgram);
    encode_blackrock_spike(protocol, 300, 2, 255, 0, dgram);  // noise
    encode_blackrock_spike(protocol, 200, 3, 6, 0, dgram);    // no such unit
    core::EventBatch b;
    ASSERT_TRUE(d.decode(dgram, 0, b));
    ASSERT_EQ(b.events.size(), 1u);
    EXPECT_EQ(b.events[0].channel, 1u);
    EXPECT_EQ(format_event_drops(d, FormatEventDrop::kNoise), 1u);
    EXPECT_EQ(format_event_drops(d, FormatEventDrop::kUnknownUnit), 1u);
    EXPECT_EQ(d.stats().format_events_dropped(), 2u);
    const int64_t t300 = protocol == P::kV3_11 ? 10'000'000 : 300;
    EXPECT_EQ(b.device_time_ns, t300);
  }
}

TEST(BlackrockPacketTest, heartbeat_advances_device_time_without_events) {
  auto d = make(P::kV4_1);
  std::vector<uint8_t> dgram;
  encode_blackrock_heartbeat(P::kV4_1, 5'000'000'000, dgram);
  core::EventBatch b;
  b.events.push_back({});  // cleared by decode
  ASSERT_TRUE(d.decode(dgram, 9, b));
  EXPECT_TRUE(b.events.empty());
  EXPECT_EQ(b.device_time_ns, 5'000'000'000);
  EXPECT_EQ(d.stats().packets_accepted, 1u);
  EXPECT_EQ(d.stats().heartbeats, 1u);
  // Any other system packet (chid 0x8000, e.g. the protocol monitor) is a clock too.
  dgram.clear();
  BlackrockPacketHeader h;
  h.time = 6'000'000'000;
  h.chid = kBlackrockConfigChannel;
  h.type = kBlackrockTypeProtocolMonitor;
  const std::vector<uint8_t> payload(8, 0);
  encode_blackrock_packet(P::kV4_1, h, payload, dgram);
  ASSERT_TRUE(d.decode(dgram, 9, b));
  EXPECT_EQ(b.device_time_ns, 6'000'000'000);
  EXPECT_EQ(d.stats().packets_accepted, 2u);
  EXPECT_EQ(d.stats().heartbeats, 1u);  // heartbeats counts heartbeat packets only
}

TEST(BlackrockPacketTest, non_spike_packets_advance_the_clock_and_stray_spikes_are_counted) {
  BlackrockOptions o;
  o.protocol = P::kV3_11;
  o.fe_channel_count = 128;
  BlackrockPacketDecoder d(o);
  std::vector<uint8_t> dgram;
  BlackrockPacketHeader group;  // chid 0: a 30 kS/s sample group (type 5)
  group.time = 10;
  group.type = 5;
  const std::vector<uint8_t> samples(2 * 96, 0);
  encode_blackrock_packet(P::kV3_11, group, samples, dgram);
  encode_blackrock_spike(P::kV3_11, 20, 129, 0, 0, dgram);  // beyond the front-end channels
  core::EventBatch b;
  ASSERT_TRUE(d.decode(dgram, 0, b));  // continuous data and a stray spike both carry the clock
  EXPECT_TRUE(b.events.empty());
  EXPECT_EQ(b.device_time_ns, ticks_to_ns(20, 30'000));
  EXPECT_EQ(d.stats().packets_accepted, 1u);
  EXPECT_EQ(d.stats().packets_skipped, 1u);
  EXPECT_EQ(format_event_drops(d, FormatEventDrop::kChannelOutOfRange), 1u);
  EXPECT_EQ(d.stats().packets_dropped(), 0u);
  encode_blackrock_spike(P::kV3_11, 30, 128, 0, 0, dgram);
  ASSERT_TRUE(d.decode(dgram, 0, b));
  EXPECT_EQ(b.events.size(), 1u);
  EXPECT_EQ(d.stats().packets_skipped, 2u);
  EXPECT_EQ(d.stats().events_dropped(), 2u);
}

TEST(BlackrockPacketTest, truncated_packets_and_dlen_overflow_are_counted) {
  for (P protocol : {P::kV4_1, P::kV4_0, P::kV3_11}) {
    auto d = make(protocol);
    core::EventBatch b;
    std::vector<uint8_t> good;
    encode_blackrock_spike(protocol, 100, 1, 1, 0, good);
    const size_t first = good.size();
    encode_blackrock_spike(protocol, 200, 2, 1, 4, good);

    // Half a header after a good packet: the good one is kept.
    auto half_header = good;
    half_header.resize(first + 3);
    ASSERT_TRUE(d.decode(half_header, 0, b));
    EXPECT_EQ(b.events.size(), 1u);
    EXPECT_EQ(format_drops(d, FormatPacketDrop::kTruncatedPacket), 1u);

    // The second packet's payload cut short.
    auto cut = good;
    cut.pop_back();
    ASSERT_TRUE(d.decode(cut, 0, b));
    EXPECT_EQ(b.events.size(), 1u);
    EXPECT_EQ(format_drops(d, FormatPacketDrop::kTruncatedPacket), 2u);

    // The second packet's dlen points past the datagram's end.
    auto overflow = good;
    const size_t dlen_at = protocol == P::kV3_11 ? 7 : protocol == P::kV4_0 ? 11 : 12;
    overflow[first + dlen_at] = 200;
    ASSERT_TRUE(d.decode(overflow, 0, b));
    EXPECT_EQ(b.events.size(), 1u);
    EXPECT_EQ(format_drops(d, FormatPacketDrop::kTruncatedPacket), 3u);

    // Truncated at the first packet: nothing to deliver.
    EXPECT_FALSE(d.decode(std::span<const uint8_t>(good.data(), 5), 0, b));
    EXPECT_EQ(format_drops(d, FormatPacketDrop::kTruncatedPacket), 4u);
    EXPECT_FALSE(d.decode({}, 0, b));
    EXPECT_EQ(d.stats().packet_drops[static_cast<size_t>(PacketDrop::kTruncatedHeader)], 1u);

    // A spike packet too short for its fixed fields.
    std::vector<uint8_t> short_spike;
    BlackrockPacketHeader h;
    h.time = 5;
    h.chid = 3;
    encode_blackrock_packet(protocol, h, std::vector<uint8_t>(8, 0), short_spike);
    EXPECT_FALSE(d.decode(short_spike, 0, b));
    EXPECT_EQ(format_drops(d, FormatPacketDrop::kBadSpikePacket), 1u);

    // And the decoder is still fine.
    ASSERT_TRUE(d.decode(good, 0, b));
    EXPECT_EQ(b.events.size(), 2u);
  }
}

TEST(BlackrockPacketTest, protocol_4_time_in_ticks_and_unrepresentable_times) {
  auto ticks = make(P::kV4_1, /*ticks=*/true);
  std::vector<uint8_t> dgram;
  encode_blackrock_spike(P::kV4_1, 30'000ull * 3600 * 24 * 365, 1, 0, 0, dgram);  // a year of ticks
  core::EventBatch b;
  ASSERT_TRUE(ticks.decode(dgram, 0, b));
  EXPECT_EQ(b.events.at(0).t_ns, int64_t{1'000'000'000} * 3600 * 24 * 365);

  auto ns = make(P::kV4_1);
  dgram.clear();
  encode_blackrock_spike(P::kV4_1, 0x8000'0000'0000'0000ull, 1, 0, 0, dgram);
  EXPECT_FALSE(ns.decode(dgram, 0, b));
  EXPECT_EQ(ns.stats().packet_drops[static_cast<size_t>(PacketDrop::kBadPacketTime)], 1u);
}

TEST(BlackrockPacketTest, invalid_options_are_all_reported) {
  BlackrockOptions o;
  o.protocol = P::kV3_11;
  o.sample_rate_hz = 0;
  o.time_units = BlackrockTimeUnits::kNs;
  o.fe_channel_count = 0;
  EXPECT_EQ(o.validate().size(), 3u);
  EXPECT_THROW(BlackrockPacketDecoder{o}, std::invalid_argument);
  EXPECT_TRUE(BlackrockOptions{}.validate().empty());
}

// The clock overflow intan_spike_stream_fuzz found, on the 3.11 path (same unwrapping): at 1 Hz
// a few packets stepping the clock by 2^31 - 1 ticks pass 292 years of ns; those are dropped as
// kBadPacketTime rather than overflowing int64.
TEST(BlackrockPacketTest, clock_beyond_int64_ns_is_dropped_not_overflowed) {
  BlackrockOptions o;
  o.protocol = P::kV3_11;
  o.sample_rate_hz = 1;
  BlackrockPacketDecoder d(o);
  core::EventBatch b;
  uint64_t spikes = 0;
  uint32_t t = 0;
  for (int i = 0; i < 6; ++i, t += 0x7FFFFFFFu) {
    std::vector<uint8_t> dg;
    encode_blackrock_spike(P::kV3_11, t, 1, 1, 0, dg);
    if (d.decode(dg, 0, b)) spikes += b.events.size();
    for (const auto& e : b.events) EXPECT_GE(e.t_ns, 0);
  }
  EXPECT_EQ(spikes, 5u);
  EXPECT_EQ(d.stats().packet_drops[static_cast<size_t>(PacketDrop::kBadPacketTime)], 1u);
}

// ---------------------------------------------------------------------------------------------
// Streams encoded from CereLink's own layouts (CerebusOSS/CereLink @ cd00f9b,
// src/cbproto/include/cbproto/types.h), not from encode_blackrock_*: the structs below restate
// the vendor's typedefs field for field, and the bytes are what an NSP puts on the wire.
#pragma pack(push, 1)
struct VendorHeader {  // cbPKT_HEADER, types.h:230-237 (protocol 4.1 / 4.2)
  uint64_t time;
  uint16_t chid;
  uint16_t type;
  uint16_t dlen;
  uint8_t instrument;  // "0-based in packet, despite cbNSP1=1!" (types.h:235)
  uint8_t reserved;
};
struct VendorSpike {  // cbPKT_SPK, types.h:1113-1122, wave cut to 48 samples (default spike length)
  VendorHeader h;
  float fPattern[3];
  int16_t nPeak;
  int16_t nValley;
  int16_t wave[48];
};
struct VendorSysInfo {  // cbPKT_SYSINFO, types.h:814-823
  VendorHeader h;
  uint32_t sysfreq, spikelen, spikepre, resetque, runlevel, runflags;
};
struct VendorProcInfo {  // cbPKT_PROCINFO, types.h:947-963
  VendorHeader h;
  uint32_t proc, idcode;
  char ident[64];  // cbLEN_STR_IDENT, types.h:180
  uint32_t chanbase, chancount, bankcount, groupcount, filtcount, sortcount, unitcount, hoopcount,
      reserved, version;
};
#pragma pack(pop)
static_assert(sizeof(VendorHeader) == 16);

template <typename T>
void append(std::vector<uint8_t>& out, T pkt) {
  pkt.h.dlen =
      static_cast<uint16_t>((sizeof(T) - sizeof(VendorHeader)) / 4);  // "dlen: 32-bit chunks"
  const auto* p = reinterpret_cast<const uint8_t*>(&pkt);
  out.insert(out.end(), p, p + sizeof(T));
}

VendorSpike vendor_spike(uint64_t time, uint8_t instrument, uint16_t chid, uint16_t unit) {
  VendorSpike s{};
  s.h.time = time;
  s.h.chid = chid;  // "chid is the channel number of the spike" (types.h:1111-1112)
  s.h.type = unit;  // "type is the sorted unit number (0=unsorted, 255=noise)" (types.h:1112)
  s.h.instrument = instrument;
  return s;
}

TEST(BlackrockVendorStreamTest, two_nsps_with_the_same_chids_do_not_collide) {
  BlackrockOptions o;
  o.protocol = P::kV4_1;  // 4.2 on the wire: same header (types.h:33-34 cbVERSION 4.2)
  o.time_units = BlackrockTimeUnits::kNs;
  BlackrockPacketDecoder d(o);
  // Two NSPs (instrument 0 and 1), chids 1..96 each, 200 datagrams of interleaved spikes.
  std::map<std::pair<uint8_t, uint16_t>, uint64_t> sent;
  std::map<uint32_t, uint64_t> decoded;
  core::EventBatch b;
  uint64_t total_sent = 0;
  for (int k = 0; k < 200; ++k) {
    std::vector<uint8_t> dgram;
    for (int j = 0; j < 10; ++j) {
      const auto instrument = static_cast<uint8_t>(j % 2);
      const auto chid = static_cast<uint16_t>(1 + (k * 7 + j * 13) % 96);
      append(dgram,
             vendor_spike(1'000'000ull * k + j, instrument, chid, static_cast<uint16_t>(j % 3)));
      ++sent[{instrument, chid}];
      ++total_sent;
    }
    ASSERT_TRUE(d.decode(dgram, 0, b));
    for (const auto& e : b.events) ++decoded[e.channel];
  }
  uint64_t total_decoded = 0;
  for (const auto& [key, n] : sent) {
    EXPECT_EQ(decoded[blackrock_channel_key(key.first, key.second)], n)
        << int(key.first) << "/" << key.second;
    total_decoded += decoded[blackrock_channel_key(key.first, key.second)];
  }
  EXPECT_EQ(decoded.size(), sent.size());  // no two (instrument, chid) share a channel
  EXPECT_EQ(total_decoded, total_sent);
  EXPECT_EQ(d.stats().events_dropped(), 0u);
  EXPECT_EQ(blackrock_channel_key(1, 5), 65536u + 5u);
  std::printf("[figures] two NSPs: sent %llu, decoded %llu, keys %zu (pairs %zu)\n",
              static_cast<unsigned long long>(total_sent),
              static_cast<unsigned long long>(total_decoded), decoded.size(), sent.size());
}

TEST(BlackrockVendorStreamTest, auto_time_units_follow_procrep_and_sysrep_as_cerelink) {
  BlackrockPacketDecoder d(BlackrockOptions{});  // 4.1/4.2, time_units auto
  core::EventBatch b;
  // Before any PROCREP: ns (CereLink's default, src/cbdev/src/device_session.cpp:212).
  std::vector<uint8_t> g;
  append(g, vendor_spike(5'000, 0, 1, 0));
  ASSERT_TRUE(d.decode(g, 0, b));
  EXPECT_EQ(b.events.at(0).t_ns, 5'000);
  // A legacy NSP's configuration flood: SYSREP (sysfreq 30000, types.h:817) then PROCREP with a
  // non-Gemini ident (device_session.cpp:1450-1462): ticks at 30 kHz from then on.
  std::vector<uint8_t> flood;
  VendorSysInfo sys{};
  sys.h.chid = 0x8000;  // cbPKTCHAN_CONFIGURATION, types.h:583
  sys.h.type = 0x10;    // cbPKTTYPE_SYSREP, types.h:427
  sys.sysfreq = 30'000;
  append(flood, sys);
  VendorProcInfo proc{};
  proc.h.chid = 0x8000;
  proc.h.type = 0x21;  // cbPKTTYPE_PROCREP, types.h:432
  std::snprintf(proc.ident, sizeof(proc.ident), "%s", "Cerebus NSP 128");
  append(flood, proc);
  append(flood, vendor_spike(30'000, 0, 2, 1));
  ASSERT_TRUE(d.decode(flood, 0, b));
  EXPECT_EQ(b.events.at(0).t_ns, 1'000'000'000);  // 30000 ticks = 1 s
  // Instrument 1 is a Gemini hub: its PROCREP says so, its times stay ns.
  std::vector<uint8_t> gem;
  proc.h.instrument = 1;
  std::snprintf(proc.ident, sizeof(proc.ident), "%s", "Gemini Hub 1");
  append(gem, proc);
  append(gem, vendor_spike(7'000, 1, 2, 1));
  ASSERT_TRUE(d.decode(gem, 0, b));
  EXPECT_EQ(b.events.at(0).t_ns, 7'000);
  EXPECT_EQ(b.events.at(0).channel, blackrock_channel_key(1, 2));
}

TEST(BlackrockVendorStreamTest, continuous_only_datagrams_count_and_move_the_clock) {
  BlackrockOptions o;
  o.time_units = BlackrockTimeUnits::kNs;
  BlackrockPacketDecoder d(o);
  // cbPKT_GROUP (types.h:1150-1153): chid 0, type = group 1..6, A2D_DATA samples.
  std::vector<uint8_t> dgram(16 + 2 * 64, 0);
  VendorHeader h{};
  h.time = 123'000;
  h.chid = 0;
  h.type = 5;  // 30 kS/s group
  h.dlen = 2 * 64 / 4;
  std::memcpy(dgram.data(), &h, sizeof h);
  core::EventBatch b;
  ASSERT_TRUE(d.decode(dgram, 0, b));
  EXPECT_EQ(b.device_time_ns, 123'000);
  EXPECT_EQ(d.stats().packets_accepted, 1u);
  EXPECT_EQ(d.stats().heartbeats, 0u);
  EXPECT_EQ(d.stats().packets_skipped, 1u);
}

TEST(BlackrockVendorStreamTest, a_spike_on_chid_0_is_a_counted_drop) {
  BlackrockOptions o;
  o.time_units = BlackrockTimeUnits::kNs;
  BlackrockPacketDecoder d(o);
  std::vector<uint8_t> dgram;
  append(dgram, vendor_spike(10, 0, 0, 0));    // chid 0, unsorted: no sample group has type 0
  append(dgram, vendor_spike(11, 0, 0, 255));  // chid 0, noise
  core::EventBatch b;
  ASSERT_TRUE(d.decode(dgram, 0, b));
  EXPECT_TRUE(b.events.empty());
  EXPECT_EQ(format_event_drops(d, FormatEventDrop::kChannelOutOfRange), 2u);
}

}  // namespace
}  // namespace spikeflow::stages
