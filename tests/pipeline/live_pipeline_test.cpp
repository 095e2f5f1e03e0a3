// Integration: the real graph on loopback — a real UDP sender, the LibTorch decoder, and a real
// ZeroMQ subscriber — checking that every chunk yields exactly one prediction, in order, finite,
// and that every spike sent is counted in exactly one chunk.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <unistd.h>
#include <thread>
#include <vector>
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
  /// receive_hwm and receive_buffer_bytes set ZMQ_RCVHWM and ZMQ_RCVBUF; 0 keeps ZeroMQ's default.
  explicit Subscriber(const std::string& endpoint, int receive_hwm = 0, int receive_buffer_bytes = 0) {
    sock.set(zmq::sockopt::linger, 0);
    if (receive_hwm > 0) sock.set(zmq::sockopt::rcvhwm, receive_hwm);
    if (receive_buffer_bytes > 0) sock.set(zmq::sockopt::rcvbuf, receive_buffer_bytes);
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
  cfg.ingest.format = parse_enum<IngestFormat>(format).value();
  cfg.ingest.transport = parse_enum<Transport>(transport).value();
  cfg.ingest.port = 0;
  cfg.publish.endpoint = "tcp://127.0.0.1:*";
  cfg.metrics.print_interval_s = 0;
  LivePipeline live(cfg, models::make_untrained_possm(models::PossmConfig{}, session.units, 2, kWidth,
                                                      models::RuntimeOptions{}));
  live.start();
  Subscriber sub(live.publish_endpoint());
  const auto events = replay::merged_events(session, session.start_ns, session.end_ns);
  SendOptions o;
  o.format = cfg.ingest.format;
  o.transport = cfg.ingest.transport;
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
  cfg.ingest.transport = Transport::kNone;
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

namespace spikeflow::pipeline {
namespace {

// Reads a subscriber on a thread of its own, as a client that keeps up with the stream does.
class BackgroundReader {
 public:
  explicit BackgroundReader(Subscriber& sub) : thread_([this, &sub] { run(sub); }) {}
  ~BackgroundReader() {
    done_ = true;
    thread_.join();
  }
  BackgroundReader(const BackgroundReader&) = delete;
  BackgroundReader& operator=(const BackgroundReader&) = delete;

  /// True once a prediction with this seq (or a later one) arrived; false at the deadline.
  bool wait_for(int64_t seq, std::chrono::steady_clock::time_point deadline) {
    std::unique_lock lock(mutex_);
    return cv_.wait_until(lock, deadline, [&] { return !seqs_.empty() && seqs_.back() >= seq; });
  }
  bool received_any() const {
    std::lock_guard lock(mutex_);
    return !seqs_.empty();
  }
  std::vector<int64_t> seqs() const {
    std::lock_guard lock(mutex_);
    return seqs_;
  }

 private:
  void run(Subscriber& sub) {
    core::Prediction p;
    while (!done_) {
      if (!sub.next(p, std::chrono::milliseconds(20))) continue;
      {
        std::lock_guard lock(mutex_);
        seqs_.push_back(p.seq);
      }
      cv_.notify_all();
    }
  }

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<int64_t> seqs_;
  std::atomic<bool> done_{false};
  std::thread thread_;  // last: starts once everything it uses exists
};

/// Upper bound on the predictions queued for one subscriber that stopped reading: the publisher's
/// pipe (send_high_water_mark), the kernel's TCP buffers at both ends, ZeroMQ's I/O batches and
/// the subscriber's rcvhwm, each message carrying at least its binary payload. On loopback the
/// kernel's share dominates: Linux autotunes a TCP send buffer up to the maximum in
/// net.ipv4.tcp_wmem (4 MiB by default), tens of thousands of predictions.
int64_t max_queued_for_one_subscriber(const PublishConfig& publish, int receive_hwm, int receive_buffer_bytes) {
  int64_t wmem_min = 0, wmem_default = 0, wmem_max = 4 << 20;
  std::ifstream("/proc/sys/net/ipv4/tcp_wmem") >> wmem_min >> wmem_default >> wmem_max;
  constexpr int64_t kZmqIoBatchBytes = 2 * 8192;                              // out_batch + in_batch
  constexpr int64_t kMinMessageBytes = stages::kPredictionHeaderBytes + 2 * sizeof(float);  // 2 outputs
  const int64_t kernel_bytes = wmem_max + 2 * int64_t{receive_buffer_bytes};  // Linux doubles SO_RCVBUF
  return (kernel_bytes + kZmqIoBatchBytes) / kMinMessageBytes + publish.send_high_water_mark + receive_hwm;
}

// Issue #4: a subscriber that stops reading costs only itself. ZeroMQ's PUB never blocks; once a
// subscriber's queue is full it drops that subscriber's messages (and only its), so the graph, the
// publisher, shutdown and every other subscriber carry on, and the slow one sees gaps in seq.
TEST(SlowSubscriberTest, a_subscriber_that_stops_reading_loses_only_its_own_messages) {
  PipelineConfig cfg;
  cfg.ingest.transport = Transport::kNone;
  cfg.publish.endpoint = "tcp://127.0.0.1:*";
  // Small, yet well above a catch-up burst (up to decoder.max_batch = 64 predictions at once):
  // ZeroMQ credits a peer's reads in batches of half the mark, so a mark near the burst size
  // drops messages even for a subscriber that keeps up.
  cfg.publish.send_high_water_mark = 1000;
  cfg.chunking.deadline_enabled = false;  // chunks close on the event watermark: push() alone drives them
  cfg.metrics.print_interval_s = 0;
  const std::vector<core::UnitKey> units{{1, 1}};
  LivePipeline live(cfg, models::make_untrained_possm(models::PossmConfig{}, units, 2, kWidth,
                                                     models::RuntimeOptions{}));
  live.start();
  constexpr int kSlowHwm = 10;
  constexpr int kSlowReceiveBufferBytes = 4096;  // keeps the kernel's share on this side small
  Subscriber fast(live.publish_endpoint());  // reads everything as it comes, on its own thread
  // Reads once midway, then at the end.
  Subscriber slow(live.publish_endpoint(), kSlowHwm, kSlowReceiveBufferBytes);
  // Never reads after joining: its queue is full when stop() runs.
  Subscriber stalled(live.publish_endpoint(), kSlowHwm, kSlowReceiveBufferBytes);
  BackgroundReader fast_reader(fast);

  int64_t next_chunk = 0;
  // One spike in chunk k; the packet's device time closes chunk k - 1 (watermark past its end).
  auto push_chunk = [&] {
    const int64_t k = next_chunk++;
    core::EventBatch b;
    b.arrival_host_ns = core::host_now_ns();
    b.device_time_ns = k * kWidth + kWidth / 2;
    b.events.push_back({k * kWidth + 1000, 1, 1, 0});
    live.push(std::move(b));
    live.wait_in_flight_below(256);  // keeps the decoder's backlog far below its shedding bound
  };

  // Slow joiner: a SUB's subscription reaches the PUB asynchronously. Publish until each
  // subscriber has received a prediction; from then on every subscription is live.
  std::vector<int64_t> slow_seqs;
  bool stalled_joined = false;
  core::Prediction p;
  const auto join_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (slow_seqs.empty() || !stalled_joined || !fast_reader.received_any()) {
    ASSERT_LT(std::chrono::steady_clock::now(), join_deadline) << "subscriptions never became live";
    push_chunk();
    if (slow.next(p, std::chrono::milliseconds(10))) slow_seqs.push_back(p.seq);
    stalled_joined = stalled_joined || stalled.next(p, std::chrono::milliseconds(10));
  }

  // Round 1: more than the slow subscribers' queues can hold, while neither reads.
  const int64_t overflow_chunks =
      max_queued_for_one_subscriber(cfg.publish, kSlowHwm, kSlowReceiveBufferBytes) * 11 / 10;
  if (overflow_chunks > 200'000) {
    GTEST_SKIP() << "net.ipv4.tcp_wmem allows TCP send buffers too large to overflow quickly ("
                 << overflow_chunks << " chunks needed)";
  }
  for (int64_t i = 0; i < overflow_chunks; ++i) push_chunk();
  const int64_t round1_last = next_chunk - 2;  // the last chunk pushed is still open
  ASSERT_TRUE(fast_reader.wait_for(round1_last, std::chrono::steady_clock::now() + std::chrono::seconds(60)))
      << "the fast subscriber fell behind while the slow ones were full";

  // The slow subscriber catches up on what its queue held. Nothing is published meanwhile, so a
  // quiet half second means its queue is empty.
  while (slow.next(p, std::chrono::milliseconds(500))) slow_seqs.push_back(p.seq);

  // Round 2: a few chunks, which fit in its emptied queue; the stalled subscriber is still full.
  const int64_t round2_first = next_chunk - 1;
  for (int i = 0; i < 100; ++i) push_chunk();
  const auto stop_start = std::chrono::steady_clock::now();
  live.stop();
  const double stop_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - stop_start).count();
  const PipelineStats stats = live.stats();
  ASSERT_TRUE(fast_reader.wait_for(stats.last_seq, std::chrono::steady_clock::now() + std::chrono::seconds(10)));
  while (slow.next(p, std::chrono::milliseconds(500))) slow_seqs.push_back(p.seq);

  RecordProperty("overflow_chunks", std::to_string(overflow_chunks));
  RecordProperty("slow_received", std::to_string(slow_seqs.size()));
  RecordProperty("stop_ms", std::to_string(static_cast<int>(stop_s * 1e3)));

  // The pipeline: every chunk decoded and published, in order; no send failed or blocked.
  EXPECT_LT(stop_s, 1.0) << "stop() is bounded by the publisher's linger, whatever the subscribers do";
  EXPECT_EQ(stats.last_seq, next_chunk - 1) << "end of stream closes the last open chunk";
  EXPECT_EQ(stats.predictions, static_cast<uint64_t>(next_chunk));
  EXPECT_EQ(stats.predictions, stats.decode.chunks);
  EXPECT_EQ(stats.publish.sent, stats.predictions);
  EXPECT_EQ(stats.publish.send_failures, 0u);
  EXPECT_EQ(stats.out_of_order, 0u);
  EXPECT_EQ(stats.backlog_shed, 0u);

  // The fast subscriber: every prediction from its first to the last chunk, no gap.
  const std::vector<int64_t> fast_seqs = fast_reader.seqs();
  ASSERT_FALSE(fast_seqs.empty());
  EXPECT_LE(fast_seqs.front(), round1_last - overflow_chunks + 1) << "joined before round 1";
  EXPECT_EQ(fast_seqs.back(), stats.last_seq);
  for (size_t i = 1; i < fast_seqs.size(); ++i) {
    ASSERT_EQ(fast_seqs[i], fast_seqs[i - 1] + 1) << "the fast subscriber lost or reordered a message at " << i;
  }

  // The slow subscriber: in order, but fewer messages, with a gap where ZeroMQ dropped its share
  // of round 1; once it had read, it received again (a drop is per message, not a disconnect).
  ASSERT_FALSE(slow_seqs.empty());
  size_t gaps = 0;
  for (size_t i = 1; i < slow_seqs.size(); ++i) {
    ASSERT_GT(slow_seqs[i], slow_seqs[i - 1]) << "reordered or duplicated at " << i;
    if (slow_seqs[i] != slow_seqs[i - 1] + 1) ++gaps;
  }
  EXPECT_LT(slow_seqs.size(), fast_seqs.size()) << "round 1 published " << overflow_chunks << " chunks";
  EXPECT_GE(gaps, 1u);
  const auto round2 = std::find(slow_seqs.begin(), slow_seqs.end(), round2_first);
  ASSERT_NE(round2, slow_seqs.end()) << "the slow subscriber receives again once it has read";
  EXPECT_EQ(slow_seqs.end() - round2, stats.last_seq - round2_first + 1) << "all of round 2, in order";
}

}  // namespace
}  // namespace spikeflow::pipeline
