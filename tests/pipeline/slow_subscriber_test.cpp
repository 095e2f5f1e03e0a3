// A slow subscriber costs only itself (issue #4): ZeroMQ's PUB never blocks; once a subscriber's
// queue is full it drops that subscriber's messages (and only its), so the graph, the publisher,
// shutdown and every other subscriber carry on. Real sockets, three real subscribers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>
#include <zmq.hpp>

#include "core/time.h"
#include "models/trainer.h"
#include "pipeline/live_pipeline.h"
#include "tests/common/test_support.h"
#include "tests/common/zmq_subscriber.h"

namespace spikeflow::pipeline {
namespace {

using testing::ZmqSubscriber;
constexpr int64_t kWidth = 50 * core::kNsPerMs;

// Reads a subscriber on a thread of its own, as a client that keeps up with the stream does.
class BackgroundReader {
 public:
  explicit BackgroundReader(ZmqSubscriber& sub) : thread_([this, &sub] { run(sub); }) {}
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
  void run(ZmqSubscriber& sub) {
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
int64_t max_queued_for_one_subscriber(const PublishConfig& publish, int receive_hwm,
                                      int receive_buffer_bytes) {
  int64_t wmem_min = 0, wmem_default = 0, wmem_max = 4 << 20;
  std::ifstream("/proc/sys/net/ipv4/tcp_wmem") >> wmem_min >> wmem_default >> wmem_max;
  constexpr int64_t kZmqIoBatchBytes = 2 * 8192;  // out_batch + in_batch
  constexpr int64_t kMinMessageBytes =
      stages::kPredictionHeaderBytes + 2 * sizeof(float);  // 2 outputs
  const int64_t kernel_bytes =
      wmem_max + 2 * int64_t{receive_buffer_bytes};  // Linux doubles SO_RCVBUF
  return (kernel_bytes + kZmqIoBatchBytes) / kMinMessageBytes + publish.send_high_water_mark +
         receive_hwm;
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
  cfg.chunking.deadline_enabled =
      false;  // chunks close on the event watermark: push() alone drives them
  cfg.metrics.print_interval_s = 0;
  const std::vector<core::UnitKey> units{{1, 1}};
  LivePipeline live(cfg, models::make_untrained_possm(models::PossmConfig{}, units, 2, kWidth,
                                                      models::RuntimeOptions{}));
  live.start();
  constexpr int kSlowHwm = 10;
  constexpr int kSlowReceiveBufferBytes = 4096;  // keeps the kernel's share on this side small
  ZmqSubscriber fast(live.publish_endpoint());   // reads everything as it comes, on its own thread
  // Reads once midway, then at the end.
  ZmqSubscriber slow(live.publish_endpoint(), "pred", kSlowHwm, kSlowReceiveBufferBytes);
  // Never reads after joining: its queue is full when stop() runs.
  ZmqSubscriber stalled(live.publish_endpoint(), "pred", kSlowHwm, kSlowReceiveBufferBytes);
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
  // "Fast" means keeping up: on a loaded machine its reader thread may be starved for a while,
  // so the test never lets it fall more than a few hundred messages behind (its queue holds
  // 1000). The slow ones are not waited for.
  for (int64_t i = 0; i < overflow_chunks; ++i) {
    push_chunk();
    if (i % 100 == 99) {
      ASSERT_TRUE(fast_reader.wait_for(next_chunk - 2 - 400,
                                       std::chrono::steady_clock::now() + std::chrono::seconds(60)))
          << "the fast subscriber's reader made no progress for a minute";
    }
  }
  const int64_t round1_last = next_chunk - 2;  // the last chunk pushed is still open
  ASSERT_TRUE(fast_reader.wait_for(round1_last,
                                   std::chrono::steady_clock::now() + std::chrono::seconds(60)))
      << "the fast subscriber fell behind while the slow ones were full";

  // The slow subscriber catches up on what its queue held. Nothing is published meanwhile, so a
  // quiet half second means its queue is empty.
  while (slow.next(p, std::chrono::milliseconds(500))) slow_seqs.push_back(p.seq);

  // Round 2: a few chunks, which fit in its emptied queue; the stalled subscriber is still full.
  const int64_t round2_first = next_chunk - 1;
  for (int i = 0; i < 100; ++i) push_chunk();
  live.stop();  // returns: the publisher's linger bounds it, whatever the subscribers do
  const PipelineStats stats = live.stats();
  ASSERT_TRUE(fast_reader.wait_for(stats.last_seq,
                                   std::chrono::steady_clock::now() + std::chrono::seconds(10)));
  while (slow.next(p, std::chrono::milliseconds(500))) slow_seqs.push_back(p.seq);

  RecordProperty("overflow_chunks", std::to_string(overflow_chunks));
  RecordProperty("slow_received", std::to_string(slow_seqs.size()));

  // The pipeline: every chunk decoded and published, in order; no send failed or blocked.
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
    ASSERT_EQ(fast_seqs[i], fast_seqs[i - 1] + 1)
        << "the fast subscriber lost or reordered a message at " << i;
  }

  // The slow subscriber: in order, but fewer messages, with a gap where ZeroMQ dropped its share
  // of round 1; once it had read, it received again (a drop is per message, not a disconnect).
  ASSERT_FALSE(slow_seqs.empty());
  size_t gaps = 0;
  for (size_t i = 1; i < slow_seqs.size(); ++i) {
    ASSERT_GT(slow_seqs[i], slow_seqs[i - 1]) << "reordered or duplicated at " << i;
    if (slow_seqs[i] != slow_seqs[i - 1] + 1) ++gaps;
  }
  EXPECT_LT(slow_seqs.size(), fast_seqs.size())
      << "round 1 published " << overflow_chunks << " chunks";
  EXPECT_GE(gaps, 1u);
  const auto round2 = std::find(slow_seqs.begin(), slow_seqs.end(), round2_first);
  ASSERT_NE(round2, slow_seqs.end()) << "the slow subscriber receives again once it has read";
  EXPECT_EQ(slow_seqs.end() - round2, stats.last_seq - round2_first + 1)
      << "all of round 2, in order";
}

}  // namespace
}  // namespace spikeflow::pipeline
