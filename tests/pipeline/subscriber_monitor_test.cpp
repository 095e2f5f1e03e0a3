// The publisher-side subscriber count (pipeline/subscriber_monitor.h) with real ZeroMQ
// subscribers over tcp and ipc, with CURVE, on the live pipeline's publisher and on the profile's
// floor relay. Waits have deadlines (kPatience); nothing is asserted about time.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <zmq.hpp>

#include "models/trainer.h"
#include "pipeline/live_pipeline.h"
#include "pipeline/transport_floor.h"
#include "pipeline/zmq_publisher.h"
#include "tests/common/curve_client.h"
#include "tests/common/test_support.h"
#include "tests/common/zmq_subscriber.h"

namespace spikeflow::pipeline {
namespace {

using std::chrono::milliseconds;
using testing::wait_until;
using testing::ZmqSubscriber;

constexpr auto kPatience = std::chrono::seconds(30);  // a deadline, never an expected duration

/// One subscriber joins (0 -> 1) and leaves (-> 0) a publisher bound at `endpoint`.
void join_and_leave(const std::string& endpoint) {
  zmq::context_t ctx(1);
  PublishConfig cfg;
  cfg.endpoint = endpoint;
  ZmqPublisher pub(ctx, cfg);
  EXPECT_EQ(pub.subscribers(), 0u);
  {
    ZmqSubscriber sub(pub.endpoint());
    ASSERT_TRUE(pub.wait_for_subscribers(1, kPatience)) << endpoint;
    EXPECT_EQ(pub.subscribers(), 1u);
  }
  EXPECT_TRUE(wait_until([&] { return pub.subscribers() == 0; }, kPatience)) << endpoint;
}

TEST(SubscriberMonitorTest, count_follows_a_subscriber_over_tcp) {
  join_and_leave("tcp://127.0.0.1:*");
}

TEST(SubscriberMonitorTest, count_follows_a_subscriber_over_ipc) {
  testing::TempDir dir("submon");
  join_and_leave("ipc://" + dir.file("pub.ipc"));
}

TEST(SubscriberMonitorTest, wait_without_a_subscriber_times_out_false) {
  zmq::context_t ctx(1);
  PublishConfig cfg;
  cfg.endpoint = "tcp://127.0.0.1:*";
  ZmqPublisher pub(ctx, cfg);
  EXPECT_FALSE(pub.wait_for_subscribers(1, milliseconds(50)));
  EXPECT_EQ(pub.subscribers(), 0u);
}

TEST(SubscriberMonitorTest, counts_each_of_several_subscribers) {
  zmq::context_t ctx(1);
  PublishConfig cfg;
  cfg.endpoint = "tcp://127.0.0.1:*";
  ZmqPublisher pub(ctx, cfg);
  auto a = std::make_unique<ZmqSubscriber>(pub.endpoint());
  ZmqSubscriber b(pub.endpoint());
  ASSERT_TRUE(pub.wait_for_subscribers(2, kPatience));
  a.reset();
  EXPECT_TRUE(wait_until([&] { return pub.subscribers() == 1; }, kPatience));
}

// The publisher goes first, its subscriber still connected (and the default linger): the monitor
// thread must stop and the destructor return. A hang here is the failure (ctest's timeout).
TEST(SubscriberMonitorTest, destructor_returns_with_a_subscriber_still_connected) {
  zmq::context_t ctx(1);
  PublishConfig cfg;
  cfg.endpoint = "tcp://127.0.0.1:*";
  auto pub = std::make_unique<ZmqPublisher>(ctx, cfg);
  ZmqSubscriber sub(pub->endpoint());
  ASSERT_TRUE(pub->wait_for_subscribers(1, kPatience));
  core::Prediction p;
  p.output_dim = 2;
  p.values = {1.0f, 2.0f};
  pub->publish(p);
  pub.reset();
  SUCCEED();
}

using Keys = testing::CurveKeyPair;

/// A SUB socket; with server_key, a CURVE client with its own keys.
struct CurveSub {
  CurveSub(const std::string& endpoint, const std::string& server_key, const Keys* own) {
    testing::connect_curve_sub(sock, endpoint, server_key, own);
  }
  zmq::context_t ctx{1};
  zmq::socket_t sock{ctx, zmq::socket_type::sub};
};

// With CURVE and a ZAP allow-list, only an admitted client counts: a client whose key the ZAP
// handler refuses and a plain SUB (no CURVE) keep retrying and failing handshakes, never counted.
TEST(SubscriberMonitorTest, with_curve_only_admitted_clients_count) {
  ASSERT_TRUE(curve_available()) << "this libzmq has no CURVE";
  testing::TempDir dir("submon_curve");
  const Keys server, admitted, refused;
  const auto files = testing::write_curve_server(dir, server, {{"admitted", &admitted}});
  zmq::context_t ctx(1);
  PublishConfig cfg;
  cfg.endpoint = "tcp://127.0.0.1:*";
  cfg.curve_secret_key_file = files.secret_key_file;
  cfg.curve_clients_dir = files.clients_dir;
  ZmqPublisher pub(ctx, cfg);
  CurveSub plain(pub.endpoint(), "", nullptr);
  CurveSub stranger(pub.endpoint(), server.public_key, &refused);
  ASSERT_TRUE(wait_until([&] { return pub.stats().refused_clients >= 1; }, kPatience));
  EXPECT_EQ(pub.subscribers(), 0u) << "refused handshakes must not count";
  {
    CurveSub keyed(pub.endpoint(), server.public_key, &admitted);
    ASSERT_TRUE(pub.wait_for_subscribers(1, kPatience));
    // Another refused client after it: the count stays at the one admitted client.
    const uint64_t refused_so_far = pub.stats().refused_clients;
    CurveSub second_stranger(pub.endpoint(), server.public_key, &refused);
    ASSERT_TRUE(
        wait_until([&] { return pub.stats().refused_clients > refused_so_far; }, kPatience));
    EXPECT_EQ(pub.subscribers(), 1u);
  }
  EXPECT_TRUE(wait_until([&] { return pub.subscribers() == 0; }, kPatience));
}

TEST(SubscriberMonitorTest, floor_relay_counts_its_subscriber_and_stops_with_it_connected) {
  FloorRelayOptions fo;
  TransportFloorRelay relay(fo);
  relay.start();
  EXPECT_FALSE(relay.wait_for_subscribers(1, milliseconds(20)));
  ZmqSubscriber sub(relay.endpoint());
  ASSERT_TRUE(relay.wait_for_subscribers(1, kPatience));
  EXPECT_EQ(relay.subscribers(), 1u);
  relay.stop();  // with the subscriber still connected
  EXPECT_EQ(relay.subscribers(), 0u);
  EXPECT_FALSE(relay.wait_for_subscribers(1, milliseconds(1)));
}

TEST(SubscriberMonitorTest, live_pipeline_forwards_to_its_publisher) {
  PipelineConfig cfg;
  cfg.ingest.transport = Transport::kNone;
  cfg.publish.endpoint = "tcp://127.0.0.1:*";
  cfg.metrics.print_interval_s = 0;
  const auto decoder = [] {
    return models::make_untrained_possm(models::PossmConfig{}, {{1, 1}}, 2, 50'000'000,
                                        models::RuntimeOptions{});
  };
  {
    LivePipeline live(cfg, decoder());
    live.start();
    ZmqSubscriber sub(live.publish_endpoint());
    EXPECT_TRUE(live.wait_for_subscribers(1, kPatience));
    live.stop();
    EXPECT_FALSE(live.wait_for_subscribers(1, milliseconds(1))) << "no publisher after stop()";
  }
  cfg.publish.enabled = false;
  LivePipeline quiet(cfg, decoder());
  EXPECT_THROW((void)quiet.wait_for_subscribers(1, milliseconds(1)), std::logic_error);
}

}  // namespace
}  // namespace spikeflow::pipeline
