// Who may talk to the pipeline, over real sockets: ingest refuses datagrams and connections from
// sources outside ingest.allow (counted, logged), preflight refuses to expose ingest or the
// publisher beyond loopback without an explicit choice, and a CURVE publisher is heard only by a
// subscriber holding the server's public key (and, with a clients folder, an authorised key).
#include <gtest/gtest.h>

#include <zmq.h>

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "core/prediction.h"
#include "pipeline/ingest.h"
#include "pipeline/preflight.h"
#include "pipeline/zmq_publisher.h"
#include "stages/native_packet.h"
#include "stages/native_stream_framer.h"
#include "tests/common/curve_client.h"
#include "tests/common/test_support.h"
#include "tests/pipeline/log_capture.h"

namespace spikeflow::pipeline {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;

std::vector<uint8_t> native_packet(uint64_t sequence) {
  stages::NativePacketHeader h;
  h.stream_id = 1;
  h.sequence = sequence;
  h.device_time_ns = 2'000'000 + static_cast<int64_t>(sequence);
  const std::vector<core::SpikeEvent> ev{{1'000'000, 4, 1, 0}};
  std::vector<uint8_t> out;
  stages::encode_native_packet(h, ev, out);
  return out;
}

/// Sends one datagram to 127.0.0.1:port from a socket bound to `from` (a loopback address).
void udp_send_from(const char* from, uint16_t port, const std::vector<uint8_t>& bytes) {
  asio::io_context io;
  asio::ip::udp::socket s(io, asio::ip::udp::endpoint(asio::ip::make_address(from), 0));
  s.send_to(asio::buffer(bytes), {asio::ip::make_address("127.0.0.1"), port});
}

IngestConfig only_127_0_0_1(Transport transport) {
  IngestConfig c;
  c.transport = transport;
  c.port = 0;
  c.allow = {"127.0.0.1/32"};
  return c;
}

TEST(AccessTest, datagram_from_a_source_not_allowed_is_refused_counted_and_logged) {
  testing::LogCapture log;
  std::atomic<uint64_t> events{0};
  auto ingest = make_ingest(only_127_0_0_1(Transport::kUdp),
                            [&](core::EventBatch& b) { events += b.events.size(); });
  ingest->start();
  udp_send_from("127.0.0.2", ingest->port(), native_packet(0));
  ASSERT_TRUE(testing::wait_until([&] { return ingest->stats().refused_source == 1; }));
  udp_send_from("127.0.0.1", ingest->port(), native_packet(1));
  ASSERT_TRUE(testing::wait_until([&] { return events.load() == 1; }));
  ingest->stop();
  const auto s = ingest->stats();
  EXPECT_EQ(s.refused_source, 1u);
  EXPECT_EQ(s.packets_dropped(), 1u) << "a refused datagram is a dropped packet, by its own reason";
  EXPECT_EQ(s.packets_accepted, 1u) << "only the allowed one was decoded";
  EXPECT_EQ(events.load(), 1u);
  EXPECT_FALSE(log.lines_with("refused a datagram from 127.0.0.2").empty());
}

TEST(AccessTest, loopback_bind_without_allow_list_accepts_any_loopback_sender) {
  std::atomic<uint64_t> events{0};
  IngestConfig c;
  c.port = 0;
  auto ingest = make_ingest(c, [&](core::EventBatch& b) { events += b.events.size(); });
  ingest->start();
  udp_send_from("127.0.0.2", ingest->port(), native_packet(0));
  ASSERT_TRUE(testing::wait_until([&] { return events.load() == 1; }));
  ingest->stop();
  EXPECT_EQ(ingest->stats().refused_source, 0u);
}

TEST(AccessTest, tcp_connection_from_a_source_not_allowed_is_closed_and_counted) {
  testing::LogCapture log;
  std::atomic<uint64_t> events{0};
  auto ingest = make_ingest(only_127_0_0_1(Transport::kTcp),
                            [&](core::EventBatch& b) { events += b.events.size(); });
  ingest->start();
  asio::io_context io;
  asio::ip::tcp::socket refused(io,
                                asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.2"), 0));
  refused.connect({asio::ip::make_address("127.0.0.1"), ingest->port()});
  ASSERT_TRUE(testing::wait_until([&] { return ingest->stats().refused_connections == 1; }));
  // The server closed it: a read ends (EOF or reset), whatever was written is never decoded.
  std::vector<uint8_t> frame;
  stages::NativePacketHeader h;
  h.device_time_ns = 2'000'000;
  stages::encode_native_frame(h, std::vector<core::SpikeEvent>{{1'000'000, 4, 1, 0}}, frame);
  boost::system::error_code ec;
  asio::write(refused, asio::buffer(frame), ec);
  uint8_t byte = 0;
  refused.read_some(asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  // An allowed peer is served.
  asio::ip::tcp::socket allowed(io,
                                asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  allowed.connect({asio::ip::make_address("127.0.0.1"), ingest->port()});
  asio::write(allowed, asio::buffer(frame));
  ASSERT_TRUE(testing::wait_until([&] { return events.load() == 1; }));
  ingest->stop();
  const auto s = ingest->stats();
  EXPECT_EQ(s.refused_connections, 1u);
  EXPECT_EQ(s.connections, 1u) << "a refused connection is not a served one";
  EXPECT_FALSE(log.lines_with("refused a TCP connection from 127.0.0.2").empty());
}

bool has(const std::vector<std::string>& v, const std::string& what) {
  for (const auto& s : v) {
    if (s.find(what) != std::string::npos) return true;
  }
  return false;
}

TEST(AccessTest, preflight_refuses_a_non_loopback_bind_without_an_allow_list) {
  PipelineConfig c;
  c.decoder.checkpoint = "m.ckpt";
  EXPECT_TRUE(preflight(c, nullptr, false).errors.empty()) << "loopback defaults are fine";
  c.ingest.address = "0.0.0.0";
  auto r = preflight(c, nullptr, false);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(
      r.errors[0],
      "ingest.address 0.0.0.0 is not loopback: set ingest.allow to the sources that may send");
  c.ingest.allow = {"10.1.2.0/24"};
  EXPECT_TRUE(preflight(c, nullptr, false).errors.empty());
  c.ingest.allow = {"10.1.2.0/244"};  // set in code, past the config reader: still caught
  EXPECT_TRUE(has(preflight(c, nullptr, false).errors, "ingest.allow: '10.1.2.0/244'"));
  c.ingest.allow.clear();
  c.ingest.transport = Transport::kNone;  // replay: nothing listens
  EXPECT_TRUE(preflight(c, nullptr, false).errors.empty());
  // Client mode (ingest.connect) binds nothing: ingest.address is unused, so no allow list is
  // needed.
  c.ingest.transport = Transport::kTcp;
  c.ingest.connect = "10.1.2.3:5002";
  EXPECT_TRUE(preflight(c, nullptr, false).errors.empty());
  c.ingest.allow = {"10.1.2.0/244"};  // but a bad entry is still a bad entry
  EXPECT_TRUE(has(preflight(c, nullptr, false).errors, "ingest.allow: '10.1.2.0/244'"));
}

TEST(AccessTest, client_mode_dials_its_configured_server_whatever_ingest_allow_says) {
  // ingest.allow guards a listening socket; in client mode the peer is the server the config names.
  asio::io_context io;
  asio::ip::tcp::acceptor server(io, {asio::ip::make_address("127.0.0.1"), 0});
  std::atomic<uint64_t> events{0};
  IngestConfig c;
  c.transport = Transport::kTcp;
  c.allow = {"10.0.0.0/8"};  // does not hold 127.0.0.1
  c.connect = "127.0.0.1:" + std::to_string(server.local_endpoint().port());
  auto ingest = make_ingest(c, [&](core::EventBatch& b) { events += b.events.size(); });
  ingest->start();
  asio::ip::tcp::socket peer = server.accept();
  std::vector<uint8_t> frame;
  stages::NativePacketHeader h;
  h.device_time_ns = 2'000'000;
  stages::encode_native_frame(h, std::vector<core::SpikeEvent>{{1'000'000, 4, 1, 0}}, frame);
  asio::write(peer, asio::buffer(frame));
  ASSERT_TRUE(testing::wait_until([&] { return events.load() == 1; }));
  ingest->stop();
  const auto s = ingest->stats();
  EXPECT_EQ(s.connections, 1u);
  EXPECT_EQ(s.refused_connections, 0u);
}

TEST(AccessTest, publishing_beyond_loopback_needs_allow_remote) {
  PipelineConfig c;
  c.decoder.checkpoint = "m.ckpt";
  for (const char* local :
       {"tcp://127.0.0.1:5", "tcp://localhost:5", "tcp://[::1]:5", "ipc:///tmp/x", "inproc://x"}) {
    c.publish.endpoint = local;
    EXPECT_TRUE(preflight(c, nullptr, false).errors.empty()) << local;
  }
  for (const char* remote : {"tcp://*:47001", "tcp://0.0.0.0:47001", "tcp://192.168.1.5:47001",
                             "tcp://eth0:47001", "tcp://[::]:47001"}) {
    c.publish.endpoint = remote;
    c.publish.allow_remote = false;
    EXPECT_TRUE(has(preflight(c, nullptr, false).errors, "publish.allow_remote")) << remote;
    c.publish.allow_remote = true;
    EXPECT_TRUE(preflight(c, nullptr, false).errors.empty()) << remote;
  }
  // The publisher itself refuses too (a caller that skipped preflight).
  zmq::context_t ctx(1);
  PublishConfig p;
  p.endpoint = "tcp://*:*";
  EXPECT_THROW(ZmqPublisher(ctx, p), std::runtime_error);
}

using KeyPair = testing::CurveKeyPair;

void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path) << text << "\n";
}

/// A SUB socket on the prediction topic; with server_key set, a CURVE client with its own keys.
class Sub {
 public:
  Sub(const std::string& endpoint, const std::string& server_key, const KeyPair* own = nullptr) {
    testing::connect_curve_sub(sock_, endpoint, server_key, own);
  }
  /// Takes every message waiting now; returns how many arrived so far.
  size_t drain() {
    zmq::message_t m;
    while (sock_.recv(m, zmq::recv_flags::dontwait)) {
      if (!m.more()) ++received_;
    }
    return received_;
  }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t sock_{ctx_, zmq::socket_type::sub};
  size_t received_ = 0;
};

/// Publishes until `keyed` got several predictions, then on for a further window of publishes
/// (giving the others every chance to receive); the publisher thread is this one.
void publish_until_heard(ZmqPublisher& pub, Sub& keyed) {
  core::Prediction p;
  p.output_dim = 2;
  p.values = {1.0f, 2.0f};
  ASSERT_TRUE(testing::wait_until(
      [&] {
        pub.publish(p);
        return keyed.drain() >= 5;
      },
      std::chrono::seconds(30)));
  // The negative check needs a window: 100 more publishes, 2 ms apart. Nothing is asserted
  // about time; the keyed subscriber hearing first shows the handshakes have been tried.
  for (int i = 0; i < 100; ++i) {
    pub.publish(p);
    std::this_thread::sleep_for(milliseconds(2));
  }
}

TEST(AccessTest, curve_subscriber_with_the_server_key_hears_others_hear_nothing) {
  ASSERT_TRUE(curve_available()) << "this libzmq has no CURVE";
  testing::TempDir dir("curve");
  const KeyPair server, client, stranger;
  write_file(dir.file("server.key_secret"), server.secret_key);
  write_file(dir.file("server.key"), server.public_key);
  zmq::context_t ctx(1);
  PublishConfig cfg;
  cfg.endpoint = "tcp://127.0.0.1:*";
  cfg.curve_secret_key_file = dir.file("server.key_secret");
  cfg.curve_public_key_file = dir.file("server.key");
  ZmqPublisher pub(ctx, cfg);
  Sub plain(pub.endpoint(), "");
  Sub wrong_server_key(pub.endpoint(), stranger.public_key, &client);
  Sub keyed(pub.endpoint(), server.public_key, &client);
  publish_until_heard(pub, keyed);
  EXPECT_GE(keyed.drain(), 5u);
  EXPECT_EQ(plain.drain(), 0u) << "a plain SUB must not receive from a CURVE publisher";
  EXPECT_EQ(wrong_server_key.drain(), 0u) << "a wrong server key must not receive";
}

TEST(AccessTest, curve_clients_dir_admits_only_authorised_client_keys) {
  testing::TempDir dir("curve");
  const KeyPair server, authorised, unknown;
  const auto files = testing::write_curve_server(dir, server, {{"alice", &authorised}});
  write_file(dir.file("clients/README"), "not a key: ignored");
  zmq::context_t ctx(1);
  PublishConfig cfg;
  cfg.endpoint = "tcp://127.0.0.1:*";
  cfg.curve_secret_key_file = files.secret_key_file;
  cfg.curve_clients_dir = files.clients_dir;
  ZmqPublisher pub(ctx, cfg);
  Sub stranger(pub.endpoint(), server.public_key, &unknown);
  Sub alice(pub.endpoint(), server.public_key, &authorised);
  publish_until_heard(pub, alice);
  ASSERT_TRUE(testing::wait_until([&] { return pub.stats().refused_clients >= 1; }));
  EXPECT_EQ(stranger.drain(), 0u) << "knowing the server key is not enough with a clients folder";
}

TEST(AccessTest, a_busy_endpoint_with_a_curve_clients_dir_is_an_error_not_an_abort) {
  testing::TempDir dir("curve");
  const KeyPair server, authorised;
  const auto files = testing::write_curve_server(dir, server, {{"alice", &authorised}});
  zmq::context_t ctx(1);
  PublishConfig cfg;
  cfg.endpoint = "tcp://127.0.0.1:*";
  ZmqPublisher first(ctx, cfg);  // holds the port
  cfg.endpoint = first.endpoint();
  cfg.curve_secret_key_file = files.secret_key_file;
  cfg.curve_clients_dir = files.clients_dir;  // starts the ZAP thread before the bind
  try {
    ZmqPublisher second(ctx, cfg);
    FAIL() << "a second bind of " << cfg.endpoint << " succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("publish: cannot bind " + cfg.endpoint), std::string::npos)
        << e.what();
  }
}

TEST(AccessTest, bad_key_files_are_named) {
  testing::TempDir dir("curve");
  const KeyPair a, b;
  write_file(dir.file("short.key_secret"), "tooshort");
  write_file(dir.file("a.key_secret"), a.secret_key);
  write_file(dir.file("b.key"), b.public_key);
  zmq::context_t ctx(1);
  PublishConfig cfg;
  cfg.endpoint = "tcp://127.0.0.1:*";
  auto message = [&](const PublishConfig& c) -> std::string {
    try {
      ZmqPublisher pub(ctx, c);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "";
  };
  cfg.curve_secret_key_file = dir.file("missing");
  EXPECT_NE(message(cfg).find("publish.curve_secret_key_file: cannot read"), std::string::npos)
      << message(cfg);
  cfg.curve_secret_key_file = dir.file("short.key_secret");
  EXPECT_NE(message(cfg).find("is not a CURVE key"), std::string::npos) << message(cfg);
  cfg.curve_secret_key_file = dir.file("a.key_secret");
  cfg.curve_public_key_file = dir.file("b.key");
  EXPECT_NE(message(cfg).find("does not match"), std::string::npos) << message(cfg);
  PipelineConfig pc;
  pc.decoder.checkpoint = "m.ckpt";
  pc.publish = cfg;
  pc.publish.curve_secret_key_file = dir.file("short.key_secret");
  EXPECT_TRUE(has(preflight(pc, nullptr, false).errors, "publish.curve_secret_key_file"));
}

}  // namespace
}  // namespace spikeflow::pipeline
