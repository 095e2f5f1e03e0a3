// Every ingest format over real loopback sockets: Blackrock NSP packets and native packets over
// UDP, the Intan RHX spike stream and length-prefixed native packets over TCP, including bad
// input, split writes and a peer that disconnects and reconnects.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>
#include <condition_variable>
#include <mutex>
#include <set>
#include <vector>

#include "pipeline/config_keys.h"
#include "pipeline/ingest.h"
#include "pipeline/pipeline_config.h"
#include "stages/binner.h"
#include "stages/blackrock_packet.h"
#include "stages/intan_spike_stream.h"
#include "stages/native_packet.h"
#include "stages/native_stream_framer.h"
#include "tests/common/test_support.h"

namespace spikeflow::pipeline {
namespace {

namespace asio = boost::asio;

/// Collects what the ingest thread hands over; waits on a condition with a deadline.
class Collector {
 public:
  Ingest::Sink sink() {
    return [this](core::EventBatch& b) {
      std::lock_guard lock(m_);
      for (const auto& e : b.events) events_.push_back(e);
      max_device_time_ = std::max(max_device_time_, b.device_time_ns);
      ++batches_;
      cv_.notify_all();
    };
  }
  /// Waits until `pred(events, max_device_time)` holds or 30 s pass (a bound for a loaded machine;
  /// a passing run returns as soon as the events arrive).
  template <typename Pred>
  bool wait(Pred pred) {
    std::unique_lock lock(m_);
    return cv_.wait_for(lock, std::chrono::seconds(30),
                        [&] { return pred(events_, max_device_time_); });
  }
  std::vector<core::SpikeEvent> events() {
    std::lock_guard lock(m_);
    return events_;
  }

 private:
  std::mutex m_;
  std::condition_variable cv_;
  std::vector<core::SpikeEvent> events_;
  int64_t max_device_time_ = -1;
  uint64_t batches_ = 0;
};

/// Waits until the ingest's counters satisfy pred (they are published after each read).
template <typename Pred>
bool wait_stats(const Ingest& ingest, Pred pred) {
  return testing::wait_until([&] { return pred(ingest.stats()); });
}

void udp_send(uint16_t port, const std::vector<uint8_t>& bytes) {
  asio::io_context io;
  asio::ip::udp::socket s(io, asio::ip::udp::v4());
  s.send_to(asio::buffer(bytes), {asio::ip::make_address("127.0.0.1"), port});
}

struct TcpPeer {
  asio::io_context io;
  asio::ip::tcp::socket s{io};
  explicit TcpPeer(uint16_t port) { s.connect({asio::ip::make_address("127.0.0.1"), port}); }
  void write(std::span<const uint8_t> bytes) {
    asio::write(s, asio::buffer(bytes.data(), bytes.size()));
  }
  /// Writes one byte at a time: every split point a TCP read can produce.
  void write_bytewise(const std::vector<uint8_t>& bytes) {
    for (uint8_t b : bytes) asio::write(s, asio::buffer(&b, 1));
  }
};

IngestConfig config(const std::string& format, const std::string& transport) {
  IngestConfig c;
  c.format = parse_enum<IngestFormat>(format).value();
  c.transport = parse_enum<Transport>(transport).value();
  c.port = 0;
  return c;
}

TEST(IngestTest, blackrock_v41_spikes_over_udp) {
  Collector got;
  auto ingest = make_ingest(config("blackrock", "udp"), got.sink());
  ingest->start();
  std::vector<uint8_t> d;
  const auto p = stages::BlackrockProtocol::kV4_1;
  stages::encode_blackrock_spike(p, 1'000'000, 5, 1, 48, d);
  stages::encode_blackrock_spike(p, 1'500'000, 7, 255, 48, d);  // noise: dropped, counted
  stages::encode_blackrock_spike(p, 2'000'000, 9, 2, 48, d);
  stages::encode_blackrock_heartbeat(p, 3'000'000, d);
  udp_send(ingest->port(), d);
  ASSERT_TRUE(got.wait([](auto& ev, int64_t t) { return ev.size() == 2 && t == 3'000'000; }));
  auto ev = got.events();
  EXPECT_EQ(ev[0].t_ns, 1'000'000);
  EXPECT_EQ(ev[0].channel, 5u);
  EXPECT_EQ(ev[0].unit, 1);
  EXPECT_EQ(ev[1].channel, 9u);
  EXPECT_EQ(ev[1].unit, 2);
  udp_send(ingest->port(), {1, 2, 3});  // truncated datagram
  ASSERT_TRUE(
      wait_stats(*ingest, [](const stages::IngestStats& s) { return s.packets_dropped() >= 1; }));
  const auto s = ingest->stats();
  EXPECT_EQ(s.format_event_drops[static_cast<size_t>(stages::FormatEventDrop::kNoise)], 1u);
  ingest->stop();
}

TEST(IngestTest, blackrock_v311_ticks_become_nanoseconds) {
  Collector got;
  auto c = config("blackrock", "udp");
  c.blackrock_protocol = stages::BlackrockProtocol::kV3_11;
  auto ingest = make_ingest(c, got.sink());
  ingest->start();
  std::vector<uint8_t> d;
  stages::encode_blackrock_spike(stages::BlackrockProtocol::kV3_11, 30'000, 3, 1, 0,
                                 d);  // 1 s at 30 kHz
  udp_send(ingest->port(), d);
  ASSERT_TRUE(got.wait([](auto& ev, int64_t) { return ev.size() == 1; }));
  EXPECT_EQ(got.events()[0].t_ns, 1'000'000'000);
  ingest->stop();
}

TEST(IngestTest, intan_stream_over_tcp_split_anywhere_with_garbage_and_reconnect) {
  Collector got;
  auto c = config("intan", "tcp");
  c.sample_rate_hz = 30000;
  auto ingest = make_ingest(c, got.sink());
  ingest->start();
  std::vector<uint8_t> bytes;
  stages::encode_intan_spike("A-005", 300, stages::kIntanSpikeIdUnclassified, bytes);
  bytes.insert(bytes.end(), {0xde, 0xad, 0xbe});  // garbage: skipped by resync, counted
  stages::encode_intan_spike("B-010", 600, 0x01, bytes);
  {
    TcpPeer peer(ingest->port());
    peer.write_bytewise(bytes);
    ASSERT_TRUE(got.wait([](auto& ev, int64_t) { return ev.size() == 2; }));
  }  // peer disconnects
  auto ev = got.events();
  EXPECT_EQ(ev[0].t_ns, 10'000'000);  // sample 300 at 30 kHz
  EXPECT_EQ(ev[0].channel, 5u);
  EXPECT_EQ(ev[1].channel, 128u + 10u);
  EXPECT_EQ(ev[1].unit, 1);
  ASSERT_TRUE(wait_stats(*ingest, [](const stages::IngestStats& s) { return s.disconnects == 1; }));
  // The acquisition software reconnects (and restarts its sample counter).
  TcpPeer again(ingest->port());
  std::vector<uint8_t> more;
  stages::encode_intan_spike("A-001", 30, stages::kIntanSpikeIdUnclassified, more);
  again.write(more);
  ASSERT_TRUE(got.wait([](auto& ev, int64_t) { return ev.size() == 3; }));
  EXPECT_EQ(got.events()[2].t_ns, 1'000'000);
  const auto s = ingest->stats();
  EXPECT_EQ(s.connections, 2u);
  EXPECT_EQ(s.resync_bytes, 3u);
  ingest->stop();
}

TEST(IngestTest, native_frames_over_tcp_and_a_framing_error_drops_only_that_peer) {
  Collector got;
  auto ingest = make_ingest(config("native", "tcp"), got.sink());
  ingest->start();
  std::vector<uint8_t> frames;
  stages::NativePacketHeader h;
  h.stream_id = 1;
  h.device_time_ns = 2'000'000;
  std::vector<core::SpikeEvent> ev{{1'000'000, 4, 1, 0}, {1'500'000, 6, 2, 0}};
  stages::encode_native_frame(h, ev, frames);
  h.sequence = 1;
  h.device_time_ns = 3'000'000;
  stages::encode_native_frame(h, {}, frames);  // heartbeat
  TcpPeer bad(ingest->port());
  TcpPeer good(ingest->port());
  good.write_bytewise(frames);
  ASSERT_TRUE(got.wait([](auto& e, int64_t t) { return e.size() == 2 && t == 3'000'000; }));
  const std::vector<uint8_t> zero_length{0, 0, 0, 0};
  bad.write(zero_length);
  ASSERT_TRUE(wait_stats(*ingest, [](const stages::IngestStats& s) { return s.disconnects == 1; }));
  EXPECT_EQ(ingest->stats()
                .format_packet_drops[static_cast<size_t>(stages::FormatPacketDrop::kFramingError)],
            1u);
  // The other peer is unaffected.
  std::vector<uint8_t> next;
  h.sequence = 2;
  h.device_time_ns = 4'000'000;
  std::vector<core::SpikeEvent> ev2{{3'500'000, 4, 1, 0}};
  stages::encode_native_frame(h, ev2, next);
  good.write(next);
  ASSERT_TRUE(got.wait([](auto& e, int64_t) { return e.size() == 3; }));
  ingest->stop();
}

TEST(IngestTest, bind_failure_names_the_address) {
  Collector got;
  auto first = make_ingest(config("native", "udp"), got.sink());
  auto c = config("native", "udp");
  c.port = first->port();
  try {
    make_ingest(c, got.sink());
    FAIL() << "second bind must fail";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(c.port)), std::string::npos)
        << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// Intan RHX as it really runs (Intan-Technologies/Intan-RHX @ a121e79). RHX is the TCP server
// (Engine/Processing/systemstate.cpp:299, tcpSpikeDataCommunicator on port 5002) and writes its
// spike records once per TCPNumberDataBlocksPerWrite blocks of FramesPerBlock frames
// (systemstate.cpp:244 default 10; systemstate.h:75 FramesPerBlock = 128;
// Engine/Threads/tcpdataoutputthread.cpp:92-99 and :318). Each record is built field by field as
// tcpdataoutputthread.cpp:167-181 does: u32 TCPSpikeMagicNumber
// (Engine/API/Hardware/rhxglobals.h:224), char nativeName[5], u32 timestamp
// (tcpdataoutputthread.cpp:57), u8 spikeId (Engine/Processing/waveformfifo.h:64-71). Written here
// without encode_intan_spike.

constexpr uint32_t kRhxSpikeMagic = 0x3ae2710f;  // rhxglobals.h:224
constexpr int kRhxFramesPerBlock = 128;          // systemstate.h:75
constexpr int kRhxBlocksPerWrite = 10;           // systemstate.cpp:244 default

void rhx_record(std::vector<uint8_t>& out, const char (&name)[6], uint32_t timestamp,
                uint8_t spike_id) {
  const size_t at = out.size();
  out.resize(at + 14);
  std::memcpy(out.data() + at, &kRhxSpikeMagic, 4);  // x86 little-endian, as RHX writes it
  std::memcpy(out.data() + at + 4, name, 5);
  std::memcpy(out.data() + at + 9, &timestamp, 4);
  out[at + 13] = spike_id;
}

/// One RHX write: every frame of blocks * 128 frames from first_frame; channel c of port A spikes
/// at frame f when (f * 7 + c * 13) % period == 0 (a deterministic, dense pattern). Returns the
/// spike count.
size_t rhx_write(std::vector<uint8_t>& out, uint32_t first_frame, int channels, int period,
                 int blocks = kRhxBlocksPerWrite) {
  size_t n = 0;
  for (uint32_t f = first_frame; f < first_frame + uint32_t(blocks * kRhxFramesPerBlock); ++f) {
    for (int c = 0; c < channels; ++c) {
      if ((f * 7 + uint32_t(c) * 13) % uint32_t(period) != 0) continue;
      char name[6];
      std::snprintf(name, sizeof name, "A-%03d", c);
      rhx_record(out, name, f,
                 c % 2 ? 0x01 : 0x40);  // SpikeIdSpikeType1 / SpikeIdUnclassifiedSpike
      ++n;
    }
  }
  return n;
}

/// Replays an RHX session through the decoder and the binner on a simulated host clock: each
/// write arrives 1 ms after its last frame (the LAN), the binner is ticked every host ms. Returns
/// {spikes sent, spikes binned, late spikes}.
struct BurstResult {
  uint64_t sent = 0, binned = 0, late = 0;
};
BurstResult replay_rhx_bursts(const PipelineConfig& cfg, int writes,
                              int blocks = kRhxBlocksPerWrite) {
  stages::IntanOptions io;
  io.sample_rate_hz = cfg.ingest.sample_rate_hz;
  stages::IntanSpikeStreamDecoder decoder(io);
  stages::Binner binner(cfg.chunking);
  std::vector<core::RawChunk> closed;
  core::EventBatch batch;
  BurstResult r;
  const auto [p, q] = stages::intan_rate_fraction(cfg.ingest.sample_rate_hz);
  auto frame_ns = [&](uint64_t f) { return stages::ticks_to_ns(static_cast<int64_t>(f) * q, p); };
  const int64_t kHostOffset = 5'000'000'000, kTransit = 1'000'000;
  int64_t host = kHostOffset;
  for (int w = 0; w < writes; ++w) {
    const auto first = static_cast<uint32_t>(w * blocks * kRhxFramesPerBlock);
    std::vector<uint8_t> bytes;
    r.sent += rhx_write(bytes, first, 32, 301, blocks);
    const int64_t arrival =
        kHostOffset + frame_ns(first + blocks * kRhxFramesPerBlock - 1) + kTransit;
    for (; host < arrival; host += 1'000'000) binner.tick(host, closed);
    decoder.feed(bytes, arrival, batch);
    binner.push(batch, closed);
  }
  binner.flush(host, closed);
  r.late = binner.stats().late_events;
  r.binned = binner.stats().events_binned;
  return r;
}

TEST(IntanRhxTest, stock_rhx_writes_lose_no_spike_with_the_intan_defaults) {
  const auto cfg = parse_pipeline_config(
      "ingest: {format: intan, transport: tcp, sample_rate_hz: 30000}\n", "t");
  // One write period (10 x 128 frames at 30 kHz = 42.7 ms) + 10 ms.
  EXPECT_EQ(cfg.chunking.deadline_grace_ns, stages::intan_write_period_ns(10, 30000) + 10'000'000);
  const auto r = replay_rhx_bursts(cfg, 400);  // 17 s of recording
  EXPECT_GT(r.sent, 10'000u);
  EXPECT_EQ(r.late, 0u);
  EXPECT_EQ(r.binned, r.sent);
  // The generic defaults (what every format got before) count some of the same spikes late.
  auto generic = cfg;
  generic.chunking = stages::BinnerOptions{};
  const auto g = replay_rhx_bursts(generic, 400);
  EXPECT_GT(g.late, 0u);
  std::printf(
      "[figures] RHX 30 kHz, 10 blocks/write: sent %llu, binned %llu, late %llu (generic defaults: "
      "late "
      "%llu = %.1f %%)\n",
      static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.binned),
      static_cast<unsigned long long>(r.late), static_cast<unsigned long long>(g.late),
      100.0 * static_cast<double>(g.late) / static_cast<double>(g.sent));
}

TEST(IntanRhxTest, the_3333_hz_mode_is_10000_over_3_and_exact) {
  // RHX's "3333" sample rate item is 10000.0 / 3.0 Hz (Engine/Processing/systemstate.cpp:125).
  const auto cfg = parse_pipeline_config(
      "ingest: {format: intan, transport: tcp, sample_rate_hz: 3333.3333333333335}\n", "t");
  EXPECT_EQ(stages::intan_rate_fraction(cfg.ingest.sample_rate_hz),
            (std::pair<int64_t, int64_t>{10000, 3}));
  stages::IntanOptions io;
  io.sample_rate_hz = cfg.ingest.sample_rate_hz;
  stages::IntanSpikeStreamDecoder d(io);
  std::vector<uint8_t> bytes;
  rhx_record(bytes, "A-001", 10000, 0x40);  // 10000 samples = 3 s exactly
  core::EventBatch b;
  d.feed(bytes, 0, b);
  ASSERT_EQ(b.events.size(), 1u);
  EXPECT_EQ(b.events[0].t_ns, 3'000'000'000);
  const auto r = replay_rhx_bursts(cfg, 40);  // a write every 384 ms
  EXPECT_EQ(r.late, 0u);
  EXPECT_EQ(r.binned, r.sent);
  std::printf("[figures] RHX 3333 Hz: sent %llu, binned %llu, late %llu\n",
              static_cast<unsigned long long>(r.sent), static_cast<unsigned long long>(r.binned),
              static_cast<unsigned long long>(r.late));
  // A rate that is no small fraction is refused with the key's name.
  EXPECT_THROW(parse_pipeline_config(
                   "ingest: {format: intan, transport: tcp, sample_rate_hz: 3333.1234567}\n", "t"),
               ConfigError);
}

TEST(IntanRhxTest, client_mode_connects_to_rhx_and_reconnects_with_backoff) {
  asio::io_context io;
  asio::ip::tcp::acceptor rhx(io, {asio::ip::make_address("127.0.0.1"), 0});  // RHX listens
  const uint16_t port = rhx.local_endpoint().port();
  Collector got;
  auto c = config("intan", "tcp");
  c.sample_rate_hz = 30000;
  c.connect = "127.0.0.1:" + std::to_string(port);
  auto ingest = make_ingest(c, got.sink());
  ingest->start();
  size_t sent = 0;
  {
    asio::ip::tcp::socket peer = rhx.accept();
    for (int w = 0; w < 5; ++w) {
      std::vector<uint8_t> bytes;
      sent += rhx_write(bytes, static_cast<uint32_t>(w * 1280), 16, 97);
      asio::write(peer, asio::buffer(bytes));  // one write per burst, as RHX does
    }
    ASSERT_TRUE(got.wait([&](auto& ev, int64_t) { return ev.size() == sent; }));
  }  // RHX stops: the ingest sees the disconnect
  ASSERT_TRUE(wait_stats(*ingest, [](const stages::IngestStats& s) { return s.disconnects == 1; }));
  rhx.close();  // and is not listening for a while: attempts fail and are counted
  ASSERT_TRUE(
      wait_stats(*ingest, [](const stages::IngestStats& s) { return s.connect_failures >= 1; }));
  asio::ip::tcp::acceptor again(io);
  again.open(asio::ip::tcp::v4());
  again.set_option(asio::socket_base::reuse_address(true));
  again.bind({asio::ip::make_address("127.0.0.1"), port});
  again.listen();
  asio::ip::tcp::socket peer = again.accept();  // the ingest comes back by itself
  std::vector<uint8_t> bytes;
  sent += rhx_write(bytes, 0, 16, 97, 1);
  asio::write(peer, asio::buffer(bytes));
  ASSERT_TRUE(got.wait([&](auto& ev, int64_t) { return ev.size() == sent; }));
  // The ingest thread publishes its counters after the sink returns: wait for them too.
  ASSERT_TRUE(wait_stats(
      *ingest, [&](const stages::IngestStats& st) { return st.events_accepted == sent; }));
  const auto s = ingest->stats();
  EXPECT_EQ(s.connections, 2u);
  EXPECT_EQ(s.events_accepted, sent);
  EXPECT_EQ(s.events_dropped(), 0u);
  EXPECT_EQ(ingest->port(), port);
  ingest->stop();
}

TEST(IntanRhxTest, bad_connect_values_are_config_errors) {
  EXPECT_THROW(
      parse_pipeline_config("ingest: {format: intan, transport: tcp, connect: nohostport}\n", "t"),
      ConfigError);
  EXPECT_THROW(
      parse_pipeline_config("ingest: {format: native, transport: udp, connect: 'a:1'}\n", "t"),
      ConfigError);
}

TEST(BlackrockIngestTest, two_nsps_over_udp_keep_their_channels_apart) {
  Collector got;
  auto c = config("blackrock", "udp");
  c.blackrock_time_units = stages::BlackrockTimeUnits::kNs;
  auto ingest = make_ingest(c, got.sink());
  ingest->start();
  // Two instruments, the same chids 1..8: 4.2 headers (CereLink types.h:230-237, instrument at
  // byte 14), encoded with the instrument byte set.
  std::vector<uint8_t> d;
  for (uint8_t inst = 0; inst < 2; ++inst) {
    for (uint16_t chid = 1; chid <= 8; ++chid) {
      stages::encode_blackrock_spike(stages::BlackrockProtocol::kV4_1, 1000 + chid, chid, 0, 48, d,
                                     inst);
    }
  }
  udp_send(ingest->port(), d);
  ASSERT_TRUE(got.wait([](auto& ev, int64_t) { return ev.size() == 16; }));
  std::set<uint32_t> channels;
  for (const auto& e : got.events()) channels.insert(e.channel);
  EXPECT_EQ(channels.size(), 16u);
  EXPECT_TRUE(channels.count(stages::blackrock_channel_key(1, 8)));
  ingest->stop();
}

}  // namespace
}  // namespace spikeflow::pipeline
