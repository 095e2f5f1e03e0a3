// Integration: the real graph on loopback — a real UDP sender, the LibTorch decoder, and a real
// ZeroMQ subscriber — checking that every chunk yields exactly one prediction, in order, finite,
// and that every spike sent is counted in exactly one chunk.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <unistd.h>
#include <thread>
#include <zmq.hpp>

#include "core/chunk_flags.h"
#include "core/time.h"
#include "models/trainer.h"
#include "pipeline/live_pipeline.h"
#include "pipeline/recording_replay.h"
#include "replay/recording_file.h"
#include "pipeline/sender.h"
#include "replay/session.h"
#include "replay/synth_session.h"
#include "stages/native_packet.h"
#include "stages/prediction_codec.h"

namespace spikeflow::pipeline {
namespace {

constexpr int64_t kWidth = 50 * core::kNsPerMs;

struct Subscriber {
  zmq::context_t ctx{1};
  zmq::socket_t sock{ctx, zmq::socket_type::sub};
  explicit Subscriber(const std::string& endpoint) {
    sock.set(zmq::sockopt::linger, 0);
    sock.set(zmq::sockopt::subscribe, "pred");
    sock.connect(endpoint);
  }
  /// Next prediction, or false when none arrives before the deadline.
  bool next(core::Prediction& p, std::chrono::milliseconds timeout) {
    zmq::pollitem_t items[] = {{sock.handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, 1, timeout) <= 0) return false;
    zmq::message_t topic, payload;
    if (!sock.recv(topic) || !sock.recv(payload)) return false;
    std::string err;
    EXPECT_TRUE(stages::decode_prediction({static_cast<const uint8_t*>(payload.data()), payload.size()}, p, &err))
        << err;
    return true;
  }
};

void send_raw(uint16_t port, const std::vector<uint8_t>& bytes) {
  boost::asio::io_context io;
  boost::asio::ip::udp::socket s(io, boost::asio::ip::udp::v4());
  s.send_to(boost::asio::buffer(bytes), {boost::asio::ip::make_address("127.0.0.1"), port});
}

class LivePipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { start(); }

  std::unique_ptr<models::StreamingDecoder> decoder() const {
    return models::make_untrained_possm(models::PossmConfig{}, session_.units, 2, kWidth, models::RuntimeOptions{});
  }

  void start() {
    replay::SynthOptions so;
    so.num_units = 32;
    so.duration_s = 3.0;
    so.seed = 7;
    session_ = replay::synthesize_session(so);
    config_.ingest.port = 0;  // ephemeral
    config_.publish.endpoint = "tcp://127.0.0.1:*";
    config_.metrics.print_interval_s = 0;
    live_ = std::make_unique<LivePipeline>(config_, decoder());
    live_->start();
    sub_ = std::make_unique<Subscriber>(live_->publish_endpoint());
  }

  // Anchors the binner with heartbeats at device time 0 until the subscriber sees a prediction
  // (the subscription is live from then on); returns the host time of the first heartbeat.
  int64_t synchronise() {
    const int64_t h0 = core::host_now_ns();
    std::vector<uint8_t> hb;
    stages::NativePacketHeader h;
    h.stream_id = 99;
    stages::encode_native_packet(h, {}, hb);
    core::Prediction p;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      send_raw(live_->ingest_port(), hb);
      if (sub_->next(p, std::chrono::milliseconds(20))) return h0;
    }
    ADD_FAILURE() << "no prediction within 10 s of anchoring the binner";
    return h0;
  }

  /// Plays the session (shifted past the chunks synchronise() closed) in real time over UDP.
  std::vector<core::SpikeEvent> play_session(int64_t h0, SendStats* stats, std::vector<core::Prediction>& got) {
    const int64_t shift = ((core::host_now_ns() - h0) / kWidth + 10) * kWidth;
    auto events = replay::merged_events(session_, session_.start_ns, session_.end_ns);
    for (auto& e : events) e.t_ns += shift;
    SendOptions so;
    so.port = live_->ingest_port();
    so.start_device_ns = shift;
    so.end_device_ns = shift + session_.end_ns;
    std::atomic<bool> sent{false};
    std::thread sender([&] {
      *stats = send_events(events, so);
      sent = true;
    });
    core::Prediction p;
    while (!sent.load()) {
      if (sub_->next(p, std::chrono::milliseconds(100))) got.push_back(p);
    }
    sender.join();
    shift_ = shift;
    return events;
  }

  int64_t shift_ = 0;

  replay::Session session_;
  PipelineConfig config_;
  std::unique_ptr<LivePipeline> live_;
  std::unique_ptr<Subscriber> sub_;
};


TEST_F(LivePipelineTest, every_chunk_yields_one_prediction_in_order_over_real_sockets) {
  const int64_t h0 = synchronise();
  SendStats send_stats;
  std::vector<core::Prediction> got;
  const auto events = play_session(h0, &send_stats, got);
  const int64_t shift = shift_;
  // Malformed datagrams are dropped and counted; the pipeline keeps going.
  send_raw(live_->ingest_port(), {1, 2, 3});
  send_raw(live_->ingest_port(), std::vector<uint8_t>(64, 0));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  auto malformed = [&] {
    const auto& d = live_->stats().ingest.packet_drops;
    return d[static_cast<size_t>(stages::PacketDrop::kTruncatedHeader)] + d[static_cast<size_t>(stages::PacketDrop::kBadMagic)];
  };
  while (malformed() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();  // the ingest thread counts them as they arrive
  }
  core::Prediction p;
  const int64_t stop_start = core::host_now_ns();
  live_->stop();
  const double stop_s = (core::host_now_ns() - stop_start) * 1e-9;
  const PipelineStats stats = live_->stats();
  while (got.empty() || got.back().seq < stats.last_seq) {
    if (!sub_->next(p, std::chrono::seconds(5))) break;
    got.push_back(p);
  }

  EXPECT_LT(stop_s, 1.0) << "shutdown must drain and stop within a second";
  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back().seq, stats.last_seq);
  for (size_t i = 1; i < got.size(); ++i) {
    ASSERT_EQ(got[i].seq, got[i - 1].seq + 1) << "gap or reorder at " << i;
  }
  const int64_t first_session_chunk = core::chunk_index(shift, kWidth);
  const int64_t last_session_chunk = core::chunk_index(shift + session_.end_ns - 1, kWidth);
  ASSERT_LE(got.front().seq, first_session_chunk);
  ASSERT_GE(got.back().seq, last_session_chunk);
  uint64_t tokens = 0;
  for (const auto& q : got) {
    EXPECT_EQ(q.end_ns - q.start_ns, kWidth);
    EXPECT_EQ(q.output_dim, 2);
    EXPECT_TRUE(std::isfinite(q.values[0]) && std::isfinite(q.values[1])) << "seq " << q.seq;
    EXPECT_GT(q.timing.publish_ns, 0);
    if (q.seq >= first_session_chunk && q.seq <= last_session_chunk) tokens += q.n_tokens;
  }
  EXPECT_EQ(tokens, events.size()) << "every spike sent lands in exactly one chunk";
  EXPECT_EQ(send_stats.events, events.size());
  EXPECT_EQ(stats.out_of_order, 0u);
  EXPECT_EQ(stats.predictions, stats.decode.chunks);
  EXPECT_EQ(stats.ingest.packet_drops[static_cast<size_t>(stages::PacketDrop::kTruncatedHeader)], 1u);
  EXPECT_EQ(stats.ingest.packet_drops[static_cast<size_t>(stages::PacketDrop::kBadMagic)], 1u);
  EXPECT_EQ(stats.binner.late_events, 0u);
  EXPECT_EQ(stats.tokenizer.unknown_unit_events, 0u);
}

class RecordingPipelineTest : public LivePipelineTest {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("spikeflow_live_" + std::to_string(::getpid()) + ".sfrec")).string();
    config_.record.path = path_;
    start();
  }
  void TearDown() override { std::filesystem::remove(path_); }
  std::string path_;
};

TEST_F(RecordingPipelineTest, replaying_the_recording_gives_bit_identical_predictions) {
  const int64_t h0 = synchronise();
  SendStats st;
  std::vector<core::Prediction> got;
  const auto events = play_session(h0, &st, got);
  live_->stall_decoder_once(300 * core::kNsPerMs);  // make the live run batch some chunks
  const std::vector<uint8_t> garbage{9, 9, 9};
  send_raw(live_->ingest_port(), garbage);
  live_->stop();
  const auto stats = live_->stats();
  EXPECT_EQ(stats.recorder.dropped, 0u);
  EXPECT_EQ(stats.recorder.io_errors, 0u);

  const replay::Recording rec = replay::read_recording(path_);
  ASSERT_TRUE(rec.clean_end) << rec.problem;
  EXPECT_EQ(rec.predictions.size(), stats.predictions);
  size_t packets = 0, ticks = 0;
  for (const auto& b : rec.batches) (b.device_time_ns == kTickMarkerDeviceTime ? ticks : packets) += 1;
  EXPECT_EQ(packets, stats.ingest.packets_accepted);
  EXPECT_GT(ticks, 0u) << "deadline closes are recorded in the binner's order";
  const auto again = replay_recording(rec, parse_pipeline_config(rec.config, "recorded"), decoder());
  ASSERT_EQ(again.size(), rec.predictions.size());
  for (size_t i = 0; i < again.size(); ++i) {
    ASSERT_EQ(again[i].seq, rec.predictions[i].seq);
    ASSERT_EQ(again[i].flags, rec.predictions[i].flags) << "seq " << again[i].seq;
    ASSERT_EQ(again[i].n_tokens, rec.predictions[i].n_tokens);
    ASSERT_EQ(std::memcmp(again[i].values.data(), rec.predictions[i].values.data(), 2 * sizeof(float)), 0)
        << "prediction " << i << " differs";
  }
}

TEST_F(LivePipelineTest, a_stalled_decoder_catches_up_without_skipping_a_chunk) {
  synchronise();
  core::Prediction p;
  ASSERT_TRUE(sub_->next(p, std::chrono::seconds(5)));
  const int64_t before = p.seq;
  live_->stall_decoder_once(500 * core::kNsPerMs);  // ~10 chunks pile up behind it
  std::vector<core::Prediction> got;
  while (got.size() < 30) {
    ASSERT_TRUE(sub_->next(p, std::chrono::seconds(5)));
    got.push_back(p);
  }
  bool saw_catch_up = false;
  int64_t expect = before + 1;
  for (const auto& q : got) {
    ASSERT_EQ(q.seq, expect++) << "every chunk published, in order";
    saw_catch_up = saw_catch_up || core::has_flag(q.flags, core::ChunkFlag::kCatchUp);
  }
  EXPECT_TRUE(saw_catch_up);
  live_->stop();
  EXPECT_GE(live_->stats().decode.max_batch, 5u);
}

}  // namespace
}  // namespace spikeflow::pipeline

namespace spikeflow::pipeline {
namespace {

// Each acquisition format, end to end through the graph: sender -> socket -> decoder stage of
// that format -> binner -> ... -> ZeroMQ. Every spike sent must reach the model.
class FormatPipelineTest : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(FormatPipelineTest, every_spike_reaches_the_model_and_chunks_stay_in_order) {
  const auto [format, transport] = GetParam();
  replay::SynthOptions so;
  so.num_units = 24;
  so.duration_s = 1.5;
  so.seed = 11;
  const auto session = replay::synthesize_session(so);
  PipelineConfig cfg;
  cfg.ingest.format = format;
  cfg.ingest.transport = transport;
  cfg.ingest.port = 0;
  cfg.publish.endpoint = "tcp://127.0.0.1:*";
  cfg.metrics.print_interval_s = 0;
  LivePipeline live(cfg, models::make_untrained_possm(models::PossmConfig{}, session.units, 2, kWidth,
                                                      models::RuntimeOptions{}));
  live.start();
  Subscriber sub(live.publish_endpoint());
  const auto events = replay::merged_events(session, session.start_ns, session.end_ns);
  SendOptions o;
  o.format = format;
  o.transport = transport;
  o.port = live.ingest_port();
  o.speed = 4.0;  // 4x real time keeps the test short; the deadline grace still covers the pacing
  o.end_device_ns = session.end_ns;
  std::vector<core::Prediction> got;
  std::atomic<bool> sent{false};
  std::thread sender([&] {
    send_events(events, o);
    sent = true;
  });
  core::Prediction p;
  while (!sent.load()) {
    if (sub.next(p, std::chrono::milliseconds(50))) got.push_back(p);
  }
  sender.join();
  // All of the sender's bytes are in the socket; wait until the ingest has decoded them.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (live.stats().ingest.events_accepted < events.size() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  live.stop();
  while (sub.next(p, std::chrono::milliseconds(500))) got.push_back(p);
  const auto st = live.stats();
  EXPECT_EQ(st.ingest.events_accepted, events.size());
  EXPECT_EQ(st.tokenizer.tokens, events.size()) << "every spike binned and tokenized once";
  EXPECT_EQ(st.tokenizer.unknown_unit_events, 0u);
  EXPECT_EQ(st.binner.late_events, 0u);
  EXPECT_EQ(st.out_of_order, 0u);
  ASSERT_GT(got.size(), 10u);
  for (size_t i = 1; i < got.size(); ++i) ASSERT_EQ(got[i].seq, got[i - 1].seq + 1);
}

INSTANTIATE_TEST_SUITE_P(Formats, FormatPipelineTest,
                         ::testing::Values(std::make_pair(std::string("native"), std::string("udp")),
                                           std::make_pair(std::string("native"), std::string("tcp")),
                                           std::make_pair(std::string("blackrock"), std::string("udp")),
                                           std::make_pair(std::string("intan"), std::string("tcp"))),
                         [](const auto& info) { return info.param.first + "_" + info.param.second; });

}  // namespace
}  // namespace spikeflow::pipeline

namespace spikeflow::pipeline {
namespace {

TEST(BacklogTest, past_the_bound_tokens_are_shed_but_every_chunk_is_still_published) {
  PipelineConfig cfg;
  cfg.ingest.transport = "none";
  cfg.publish.endpoint = "inproc://backlog-test";
  cfg.chunking.deadline_enabled = false;
  cfg.decoder.max_backlog = 5;
  std::vector<core::UnitKey> units{{1, 1}};
  std::vector<core::Prediction> got;
  LiveOptions lo;
  lo.on_prediction = [&got](const core::Prediction& p) { got.push_back(p); };
  LivePipeline live(cfg, models::make_untrained_possm(models::PossmConfig{}, units, 2, kWidth, models::RuntimeOptions{}),
                    std::move(lo));
  live.start();
  live.stall_decoder_once(400 * core::kNsPerMs);  // the decoder sits still while 40 chunks arrive
  for (int k = 0; k <= 40; ++k) {
    core::EventBatch b;
    b.arrival_host_ns = k;
    b.device_time_ns = k * kWidth + kWidth / 2;
    b.events.push_back({k * kWidth + 1000, 1, 1, 0});
    live.push(b);
  }
  live.stop();
  ASSERT_GE(got.size(), 40u);
  for (size_t i = 1; i < got.size(); ++i) ASSERT_EQ(got[i].seq, got[i - 1].seq + 1);
  uint64_t shed = 0;
  for (const auto& p : got) {
    if (core::has_flag(p.flags, core::ChunkFlag::kBacklogShed)) {
      ++shed;
      EXPECT_EQ(p.n_tokens, 0u);
    }
    EXPECT_TRUE(std::isfinite(p.values[0]) && std::isfinite(p.values[1]));
  }
  EXPECT_GT(shed, 0u);
  EXPECT_EQ(shed, live.stats().backlog_shed);
}

}  // namespace
}  // namespace spikeflow::pipeline
