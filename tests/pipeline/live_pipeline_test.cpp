// Integration: the real graph on loopback — a real UDP sender, the LibTorch decoder, and a real
// ZeroMQ subscriber — checking that every chunk yields exactly one prediction, in order, finite,
// and that every spike accepted is counted exactly once (in a chunk or as a drop). Nothing here
// depends on the machine's speed: stalls are a gate the test holds closed, waits have deadlines,
// and the asserts are about order, counts and bounds.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "core/chunk_flags.h"
#include "core/time.h"
#include "models/trainer.h"
#include "pipeline/live_pipeline.h"
#include "pipeline/recorder.h"
#include "pipeline/recording_replay.h"
#include "pipeline/sender.h"
#include "replay/recording_file.h"
#include "replay/session.h"
#include "replay/synth_session.h"
#include "stages/native_packet.h"
#include "stages/prediction_codec.h"
#include "tests/common/test_support.h"
#include "tests/common/zmq_subscriber.h"
#include "tests/pipeline/log_capture.h"

namespace spikeflow::pipeline {
namespace {

using testing::wait_until;
using testing::ZmqSubscriber;

constexpr int64_t kWidth = 50 * core::kNsPerMs;
constexpr auto kPatience = std::chrono::seconds(30);  // a deadline, never an expected duration

/// A real decoder that the test can stall and make fail: a decoder that stalls, for catch-up and
/// backlog tests, without a hook in the production API. The pipeline owns the decoder; the test
/// keeps the Control.
class TestDecoder : public models::StreamingDecoder {
 public:
  class Control {
   public:
    /// The next decode waits inside the decoder node until release().
    void stall() {
      std::lock_guard lock(mutex_);
      stalled_ = true;
    }
    void release() {
      {
        std::lock_guard lock(mutex_);
        stalled_ = false;
      }
      cv_.notify_all();
    }
    /// True once a decode is waiting at the stall.
    bool wait_stalled(std::chrono::milliseconds timeout) {
      std::unique_lock lock(mutex_);
      return cv_.wait_for(lock, timeout, [this] { return waiting_; });
    }
    /// The next n decoder calls (step, step_many) throw.
    void fail_next(int n) { failures_ = n; }

   private:
    friend class TestDecoder;
    void pass() {
      std::unique_lock lock(mutex_);
      if (!stalled_) return;
      waiting_ = true;
      cv_.notify_all();
      // Bounded, so that a failing test cannot hang the suite.
      cv_.wait_for(lock, std::chrono::seconds(120), [this] { return !stalled_; });
      waiting_ = false;
    }
    void maybe_fail() {
      if (failures_.load() > 0 && failures_.fetch_sub(1) > 0)
        throw std::runtime_error("injected failure");
    }
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stalled_ = false;
    bool waiting_ = false;
    std::atomic<int> failures_{0};
  };

  TestDecoder(std::unique_ptr<models::StreamingDecoder> inner, std::shared_ptr<Control> control)
      : inner_(std::move(inner)), control_(std::move(control)) {}

  void reset() override { inner_->reset(); }
  void step(const core::TokenChunk& c, std::span<float> out) override {
    control_->pass();
    control_->maybe_fail();
    inner_->step(c, out);
  }
  void step_many(std::span<const core::TokenChunk* const> cs, std::span<float> out) override {
    control_->pass();
    control_->maybe_fail();
    inner_->step_many(cs, out);
  }
  void prepare_next() override { inner_->prepare_next(); }
  void set_parallel_invoke(ParallelInvoke invoke) override {
    inner_->set_parallel_invoke(std::move(invoke));
  }
  int output_dim() const override { return inner_->output_dim(); }
  const std::vector<core::UnitKey>& units() const override { return inner_->units(); }
  int64_t chunk_width_ns() const override { return inner_->chunk_width_ns(); }
  std::string describe() const override { return inner_->describe(); }

 private:
  std::unique_ptr<models::StreamingDecoder> inner_;
  std::shared_ptr<Control> control_;
};

std::unique_ptr<models::StreamingDecoder> untrained(const std::vector<core::UnitKey>& units) {
  return models::make_untrained_possm(models::PossmConfig{}, units, 2, kWidth,
                                      models::RuntimeOptions{});
}

/// One packet at device time k*W + W/2 with one spike of unit (1, 1) in chunk k: it closes chunk
/// k - 1 on the event watermark.
core::EventBatch packet_for_chunk(int64_t k, int64_t arrival_host_ns) {
  core::EventBatch b;
  b.arrival_host_ns = arrival_host_ns;
  b.device_time_ns = k * kWidth + kWidth / 2;
  b.events.push_back({k * kWidth + 1000, 1, 1, 0});
  return b;
}

void send_raw(uint16_t port, const std::vector<uint8_t>& bytes) {
  boost::asio::io_context io;
  boost::asio::ip::udp::socket s(io, boost::asio::ip::udp::v4());
  s.send_to(boost::asio::buffer(bytes), {boost::asio::ip::make_address("127.0.0.1"), port});
}

class LivePipelineTest : public ::testing::Test {
 protected:
  void SetUp() override { start(); }

  void TearDown() override { control_->release(); }  // never leave the decoder node stalled

  std::unique_ptr<models::StreamingDecoder> decoder() const { return untrained(session_.units); }

  void start() {
    replay::SynthOptions so;
    so.num_units = 32;
    so.duration_s = 3.0;
    so.seed = 7;
    session_ = replay::synthesize_session(so);
    config_.ingest.port = 0;  // ephemeral
    config_.publish.endpoint = "tcp://127.0.0.1:*";
    config_.metrics.print_interval_s = 0;
    live_ =
        std::make_unique<LivePipeline>(config_, std::make_unique<TestDecoder>(decoder(), control_));
    live_->start();
    sub_ = std::make_unique<ZmqSubscriber>(live_->publish_endpoint());
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
  std::vector<core::SpikeEvent> play_session(int64_t h0, SendStats* stats,
                                             std::vector<core::Prediction>& got) {
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
  std::shared_ptr<TestDecoder::Control> control_ = std::make_shared<TestDecoder::Control>();
  std::unique_ptr<LivePipeline> live_;
  std::unique_ptr<ZmqSubscriber> sub_;

  /// Stalls the decoder until at least n more chunks wait behind it, then lets it go: the next
  /// decode call must take them all at once (catch-up).
  void stall_decoder_for_chunks(uint64_t n) {
    control_->stall();
    ASSERT_TRUE(control_->wait_stalled(kPatience)) << "the decoder never reached the stall";
    const uint64_t admitted = live_->stats().inbox.admitted;
    ASSERT_TRUE(
        wait_until([&] { return live_->stats().inbox.admitted >= admitted + n; }, kPatience));
    control_->release();
  }
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
  auto malformed = [&] {
    const auto& d = live_->stats().ingest.packet_drops;
    return d[static_cast<size_t>(stages::PacketDrop::kTruncatedHeader)] +
           d[static_cast<size_t>(stages::PacketDrop::kBadMagic)];
  };
  EXPECT_TRUE(wait_until([&] { return malformed() >= 2; }, kPatience))
      << "the ingest thread counts them";
  live_->stop();
  const PipelineStats stats = live_->stats();
  core::Prediction p;
  while (got.empty() || got.back().seq < stats.last_seq) {
    if (!sub_->next(p, kPatience)) break;
    got.push_back(p);
  }

  ASSERT_FALSE(got.empty());
  EXPECT_EQ(got.back().seq, stats.last_seq);
  for (size_t i = 1; i < got.size(); ++i) {
    ASSERT_EQ(got[i].seq, got[i - 1].seq + 1) << "gap or reorder at " << i;
  }
  const int64_t first_session_chunk = core::chunk_index(shift, kWidth);
  const int64_t last_session_chunk = core::chunk_index(shift + session_.end_ns - 1, kWidth);
  ASSERT_LE(got.front().chunk_index, first_session_chunk);
  ASSERT_GE(got.back().chunk_index, last_session_chunk);
  uint64_t tokens = 0;
  for (const auto& q : got) {
    EXPECT_EQ(q.end_ns - q.start_ns, kWidth);
    EXPECT_EQ(q.output_dim, 2);
    EXPECT_TRUE(std::isfinite(q.values[0]) && std::isfinite(q.values[1])) << "seq " << q.seq;
    EXPECT_GT(q.timing.publish_ns, 0);
    if (q.seq >= first_session_chunk && q.seq <= last_session_chunk) tokens += q.n_tokens;
  }
  EXPECT_EQ(send_stats.events, events.size());
  // Every spike accepted lands in exactly one chunk or is counted where it was dropped (a spike
  // that arrives after its chunk's deadline, as it may on a loaded machine, is late, not lost).
  EXPECT_LE(stats.ingest.events_accepted, events.size());
  EXPECT_EQ(tokens + stats.binner.late_events + stats.binner.future_events +
                stats.tokenizer.unknown_unit_events,
            stats.ingest.events_accepted);
  EXPECT_EQ(stats.tokenizer.unknown_unit_events, 0u);
  // Every chunk closed was decoded once and published once, in order.
  EXPECT_EQ(stats.out_of_order, 0u);
  EXPECT_EQ(stats.predictions, stats.decode.chunks);
  EXPECT_EQ(stats.inbox.admitted, stats.predictions);
  EXPECT_EQ(stats.inbox.decoded, stats.predictions);
  EXPECT_EQ(stats.publish.sent, stats.predictions);
  EXPECT_EQ(stats.decode.decoder_errors, 0u);
  EXPECT_EQ(stats.ingest.packet_drops[static_cast<size_t>(stages::PacketDrop::kTruncatedHeader)],
            1u);
  EXPECT_EQ(stats.ingest.packet_drops[static_cast<size_t>(stages::PacketDrop::kBadMagic)], 1u);
}

class RecordingPipelineTest : public LivePipelineTest {
 protected:
  void SetUp() override {
    path_ = dir_.file("live.sfrec");
    config_.record.path = path_;
    start();
  }
  testing::TempDir dir_{"live_recording"};
  std::string path_;
};

TEST_F(RecordingPipelineTest, replaying_the_recording_gives_bit_identical_predictions) {
  const int64_t h0 = synchronise();
  SendStats st;
  std::vector<core::Prediction> got;
  const auto events = play_session(h0, &st, got);
  stall_decoder_for_chunks(3);  // the live run batches chunks: replay must reproduce its groups
  const std::vector<uint8_t> garbage{9, 9, 9};
  send_raw(live_->ingest_port(), garbage);
  live_->stop();
  const auto stats = live_->stats();
  EXPECT_GT(stats.decode.batched_calls, 0u);
  EXPECT_EQ(stats.recorder.dropped, 0u);
  EXPECT_EQ(stats.recorder.io_errors, 0u);

  const replay::Recording rec = replay::read_recording(path_);
  ASSERT_TRUE(rec.clean_end) << rec.problem;
  EXPECT_EQ(rec.predictions.size(), stats.predictions);
  EXPECT_EQ(rec.predictions.size(), stats.recorder.predictions);
  size_t packets = 0, ticks = 0;
  for (const auto& b : rec.batches)
    (b.device_time_ns == kTickMarkerDeviceTime ? ticks : packets) += 1;
  EXPECT_EQ(packets, stats.ingest.packets_accepted);
  EXPECT_GT(ticks, 0u) << "deadline closes are recorded in the binner's order";
  bool batched = false;
  for (const auto& p : rec.predictions)
    batched = batched || core::has_flag(p.flags, core::ChunkFlag::kCatchUp);
  EXPECT_TRUE(batched);
  const auto again =
      replay_recording(rec, parse_pipeline_config(rec.config, "recorded"), decoder());
  ASSERT_EQ(again.size(), rec.predictions.size());
  for (size_t i = 0; i < again.size(); ++i) {
    ASSERT_EQ(again[i].seq, rec.predictions[i].seq);
    ASSERT_EQ(again[i].flags, rec.predictions[i].flags) << "seq " << again[i].seq;
    ASSERT_EQ(again[i].n_tokens, rec.predictions[i].n_tokens);
    ASSERT_EQ(
        std::memcmp(again[i].values.data(), rec.predictions[i].values.data(), 2 * sizeof(float)), 0)
        << "prediction " << i << " differs";
  }
}

TEST_F(LivePipelineTest, a_stalled_decoder_catches_up_without_skipping_a_chunk) {
  synchronise();
  core::Prediction p;
  ASSERT_TRUE(sub_->next(p, kPatience));
  const int64_t before = p.seq;
  stall_decoder_for_chunks(10);  // deadline ticks keep closing chunks behind the stalled decoder
  // Read on until past the catch-up batch (however far behind the subscriber is).
  bool saw_catch_up = false;
  int64_t expect = before + 1;
  for (int n = 0; !saw_catch_up || n < 30; ++n) {
    ASSERT_TRUE(sub_->next(p, kPatience)) << "no catch-up batch published";
    ASSERT_EQ(p.seq, expect++) << "every chunk published, in order";
    saw_catch_up = saw_catch_up || core::has_flag(p.flags, core::ChunkFlag::kCatchUp);
  }
  live_->stop();
  const auto stats = live_->stats();
  EXPECT_GE(stats.decode.max_batch, 10u) << "all chunks that waited, in one call";
  EXPECT_GE(stats.inbox.max_waiting, 10u);
  EXPECT_EQ(stats.inbox.shed, 0u);
  EXPECT_EQ(stats.out_of_order, 0u);
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
  cfg.ingest.format = parse_enum<IngestFormat>(format).value();
  cfg.ingest.transport = parse_enum<Transport>(transport).value();
  cfg.ingest.port = 0;
  cfg.publish.endpoint = "tcp://127.0.0.1:*";
  cfg.metrics.print_interval_s = 0;
  std::vector<core::Prediction> all;  // every prediction, from the on_prediction tap
  LiveOptions lo;
  lo.on_prediction = [&all](const core::Prediction& p) { all.push_back(p); };
  LivePipeline live(cfg, untrained(session.units), std::move(lo));
  live.start();
  ZmqSubscriber sub(live.publish_endpoint());
  const auto events = replay::merged_events(session, session.start_ns, session.end_ns);
  SendOptions o;
  o.format = cfg.ingest.format;
  o.transport = cfg.ingest.transport;
  o.port = live.ingest_port();
  o.speed =
      4.0;  // 4x real time keeps the test short; a spike that misses its deadline is counted late
  o.end_device_ns = session.end_ns;
  std::vector<core::Prediction> got;  // what a subscriber that joined at some point received
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
  // All of the sender's bytes are in the socket; wait until the ingest has decoded them (a UDP
  // datagram the kernel dropped never arrives: then the deadline passes and the counts below say
  // so).
  wait_until([&] { return live.stats().ingest.events_accepted >= events.size(); }, kPatience);
  live.stop();
  while (sub.next(p, std::chrono::milliseconds(500))) got.push_back(p);
  const auto st = live.stats();
  if (transport == "tcp") {
    EXPECT_EQ(st.ingest.events_accepted, events.size());
  } else {
    EXPECT_LE(st.ingest.events_accepted, events.size());
  }
  EXPECT_EQ(st.tokenizer.tokens + st.binner.late_events + st.binner.future_events,
            st.ingest.events_accepted)
      << "every spike accepted is binned and tokenized once, or counted where it was dropped";
  EXPECT_EQ(st.tokenizer.unknown_unit_events, 0u);
  EXPECT_EQ(st.out_of_order, 0u);
  ASSERT_EQ(all.size(), st.predictions);
  ASSERT_FALSE(all.empty());
  for (size_t i = 1; i < all.size(); ++i) ASSERT_EQ(all[i].seq, all[i - 1].seq + 1);
  EXPECT_EQ(all.back().seq, st.last_seq);
  for (size_t i = 1; i < got.size(); ++i)
    ASSERT_EQ(got[i].seq, got[i - 1].seq + 1) << "over ZeroMQ too";
}

INSTANTIATE_TEST_SUITE_P(
    Formats, FormatPipelineTest,
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
  cfg.ingest.transport = Transport::kNone;
  cfg.publish.endpoint = "inproc://backlog-test";
  cfg.chunking.deadline_enabled =
      false;  // chunks close on the event watermark: push() alone drives them
  cfg.decoder.max_backlog = 5;
  std::vector<core::Prediction> got;
  LiveOptions lo;
  lo.on_prediction = [&got](const core::Prediction& p) { got.push_back(p); };
  auto control = std::make_shared<TestDecoder::Control>();
  LivePipeline live(cfg, std::make_unique<TestDecoder>(untrained({{1, 1}}), control),
                    std::move(lo));
  live.start();
  // The decoder sits still on chunk 0 while chunks 1..39 arrive behind it.
  control->stall();
  live.push(packet_for_chunk(0, 0));
  live.push(packet_for_chunk(1, 1));  // closes chunk 0
  ASSERT_TRUE(control->wait_stalled(kPatience));
  for (int64_t k = 2; k <= 40; ++k) live.push(packet_for_chunk(k, k));
  ASSERT_TRUE(wait_until([&] { return live.stats().inbox.admitted >= 40; }, kPatience));
  control->release();
  live.stop();  // closes chunk 40 (end of stream)

  const auto stats = live.stats();
  ASSERT_EQ(got.size(), 41u);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(got[i].seq, static_cast<int64_t>(i));
  uint64_t shed = 0;
  for (const auto& p : got) {
    const bool was_shed = core::has_flag(p.flags, core::ChunkFlag::kBacklogShed);
    shed += was_shed;
    EXPECT_EQ(p.n_tokens, was_shed ? 0u : 1u) << "seq " << p.seq;
    EXPECT_EQ(was_shed, core::has_flag(p.flags, core::ChunkFlag::kEmpty)) << "seq " << p.seq;
    EXPECT_TRUE(std::isfinite(p.values[0]) && std::isfinite(p.values[1]));
  }
  // Chunk k was admitted with k chunks waiting ahead of it: chunks 5..39 over the bound of 5
  // (chunk 40, at the end, only if the decoder had not caught up yet).
  for (int64_t k = 0; k < 5; ++k)
    EXPECT_FALSE(core::has_flag(got[static_cast<size_t>(k)].flags, core::ChunkFlag::kBacklogShed));
  for (int64_t k = 5; k < 40; ++k)
    EXPECT_TRUE(core::has_flag(got[static_cast<size_t>(k)].flags, core::ChunkFlag::kBacklogShed));
  EXPECT_EQ(shed, stats.backlog_shed);
  EXPECT_EQ(shed, stats.inbox.shed);
  EXPECT_GE(stats.inbox.max_waiting, 40u);
  EXPECT_EQ(stats.inbox.decoded, 41u);
  EXPECT_GE(stats.decode.max_batch, 39u) << "chunks 1..39 waited: one catch-up call";
}

// The taps: on_batch sees every packet in the binner's order, on_prediction every prediction
// after its publish; a tap that throws is counted and logged, and the graph carries on.
TEST(TapTest, callbacks_see_everything_in_order_and_a_throwing_one_stops_nothing) {
  PipelineConfig cfg;
  cfg.ingest.transport = Transport::kNone;
  cfg.publish.endpoint = "inproc://tap-test";
  cfg.chunking.deadline_enabled = false;
  std::vector<int64_t> packets;
  std::vector<core::Prediction> got;
  LiveOptions lo;
  lo.on_batch = [&packets](const core::EventBatch& b) { packets.push_back(b.device_time_ns); };
  lo.on_prediction = [&got](const core::Prediction& p) {
    got.push_back(p);
    if (p.seq == 3) throw std::runtime_error("callback failure");
  };
  testing::LogCapture log;
  {
    LivePipeline live(cfg, untrained({{1, 1}}), std::move(lo));
    live.start();
    for (int64_t k = 0; k < 10; ++k) {
      live.push(packet_for_chunk(k, k));
      live.wait_in_flight_below(4);
    }
    live.stop();
    const auto stats = live.stats();
    EXPECT_EQ(stats.tap_errors, 1u);
    EXPECT_EQ(stats.predictions, 10u);
    ASSERT_EQ(got.size(), 10u);
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].seq, static_cast<int64_t>(i));
      EXPECT_GE(got[i].timing.publish_ns, got[i].timing.decode_end_ns)
          << "called after the publish";
    }
    ASSERT_EQ(packets.size(), 10u);
    for (size_t i = 0; i < packets.size(); ++i)
      EXPECT_EQ(packets[i], packet_for_chunk(static_cast<int64_t>(i), 0).device_time_ns);
  }
  const auto lines = log.lines_with("on_prediction");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("callback failure"), std::string::npos) << lines[0];
}

// A decoder that throws costs no prediction: the chunk is published with its last good output
// (flagged), the failure is counted, exported and logged (not swallowed), rate-limited.
TEST(DecoderErrorTest, decoder_exceptions_are_counted_logged_and_cost_no_prediction) {
  PipelineConfig cfg;
  cfg.ingest.transport = Transport::kNone;
  cfg.publish.endpoint = "inproc://decoder-error-test";
  cfg.chunking.deadline_enabled = false;
  std::vector<core::Prediction> got;
  LiveOptions lo;
  lo.on_prediction = [&got](const core::Prediction& p) { got.push_back(p); };
  auto control = std::make_shared<TestDecoder::Control>();
  testing::LogCapture log;
  {
    LivePipeline live(cfg, std::make_unique<TestDecoder>(untrained({{1, 1}}), control),
                      std::move(lo));
    live.start();
    for (int64_t k = 0; k < 12; ++k) {
      if (k == 4) control->fail_next(3);
      live.push(packet_for_chunk(k, k));
      live.wait_in_flight_below(1);  // one decoder call per chunk
    }
    live.stop();
    const auto stats = live.stats();
    EXPECT_EQ(stats.decode.decoder_errors, 3u);
    EXPECT_EQ(stats.predictions, 12u);
    EXPECT_EQ(stats.decode.repaired_outputs, 3u);
    EXPECT_NE(stats_json(stats).find("\"decoder_errors\":3"), std::string::npos)
        << stats_json(stats);
    ASSERT_EQ(got.size(), 12u);
    uint64_t repaired = 0;
    for (const auto& p : got) {
      repaired += core::has_flag(p.flags, core::ChunkFlag::kOutputRepaired);
      EXPECT_TRUE(std::isfinite(p.values[0]) && std::isfinite(p.values[1]));
    }
    EXPECT_EQ(repaired, 3u);
  }
  const auto lines = log.lines_with("call(s) threw");
  ASSERT_FALSE(lines.empty()) << "decoder exceptions are logged";
  EXPECT_LE(lines.size(), 3u);
  EXPECT_NE(lines.back().find("injected failure"), std::string::npos) << lines.back();
  EXPECT_NE(lines.back().find("3 in all"), std::string::npos) << lines.back();
}

}  // namespace
}  // namespace spikeflow::pipeline
