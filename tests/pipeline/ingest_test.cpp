// Every ingest format over real loopback sockets: Blackrock NSP packets and native packets over
// UDP, the Intan RHX spike stream and length-prefixed native packets over TCP, including bad
// input, split writes and a peer that disconnects and reconnects.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "pipeline/ingest.h"
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
    return cv_.wait_for(lock, std::chrono::seconds(30), [&] { return pred(events_, max_device_time_); });
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
  void write(std::span<const uint8_t> bytes) { asio::write(s, asio::buffer(bytes.data(), bytes.size())); }
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
  ASSERT_TRUE(wait_stats(*ingest, [](const stages::IngestStats& s) { return s.packets_dropped() >= 1; }));
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
  stages::encode_blackrock_spike(stages::BlackrockProtocol::kV3_11, 30'000, 3, 1, 0, d);  // 1 s at 30 kHz
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
  EXPECT_EQ(ingest->stats().format_packet_drops[static_cast<size_t>(stages::FormatPacketDrop::kFramingError)], 1u);
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
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(c.port)), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace spikeflow::pipeline
