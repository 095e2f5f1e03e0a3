// Session replay (pipeline/session_replay.h) through the real graph with an untrained decoder:
// every chunk of the played range is predicted once, in order, nothing shed; paced or not.
#include "pipeline/session_replay.h"

#include <gtest/gtest.h>

#include "core/time.h"
#include "models/trainer.h"
#include "replay/synth_session.h"

namespace spikeflow::pipeline {
namespace {

constexpr int64_t kWidth = 50 * core::kNsPerMs;

class SessionReplayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    replay::SynthOptions so;
    so.num_units = 16;
    so.duration_s = 4.0;
    so.seed = 11;
    session_ = replay::synthesize_session(so);
    config_.publish.endpoint = "inproc://session-replay-test";
    config_.metrics.print_interval_s = 0;
    config_.chunking.width_ns = kWidth;
  }

  SessionReplayResult play(const SessionReplayOptions& o) {
    return replay_session(session_, config_,
                          models::make_untrained_possm(models::PossmConfig{}, session_.units, 2,
                                                       kWidth, models::RuntimeOptions{}),
                          o);
  }

  static void expect_every_chunk_once_in_order(const SessionReplayResult& r) {
    ASSERT_FALSE(r.predictions.empty());
    for (size_t i = 1; i < r.predictions.size(); ++i) {
      EXPECT_EQ(r.predictions[i].seq, r.predictions[i - 1].seq + 1) << "at " << i;
    }
    EXPECT_EQ(r.stats.out_of_order, 0u);
    EXPECT_EQ(r.stats.backlog_shed, 0u);
    EXPECT_EQ(r.eval.missing, 0u);
    EXPECT_EQ(r.eval.matched, r.eval.chunks_in_range);
    EXPECT_GT(r.eval.matched, 0u);
  }

  replay::Session session_;
  PipelineConfig config_;
};

TEST_F(SessionReplayTest, as_fast_as_possible_predicts_every_chunk_once_in_order) {
  SessionReplayOptions o;
  o.from_ns = session_.start_ns + 1 * core::kNsPerS;
  o.to_ns = session_.end_ns;
  const auto r = play(o);
  EXPECT_EQ(r.events, replay::merged_events(session_, o.from_ns, o.to_ns).size());
  EXPECT_DOUBLE_EQ(r.session_s, static_cast<double>(o.to_ns - o.from_ns) * 1e-9);
  expect_every_chunk_once_in_order(r);
}

TEST_F(SessionReplayTest, small_packets_give_the_same_predictions_as_chunk_sized_ones) {
  SessionReplayOptions o;
  o.from_ns = session_.start_ns;
  o.to_ns = session_.end_ns;
  const auto chunk_sized = play(o);
  o.batch_ms = 7;  // packets that straddle chunk edges
  const auto small = play(o);
  expect_every_chunk_once_in_order(small);
  ASSERT_EQ(small.predictions.size(), chunk_sized.predictions.size());
  for (size_t i = 0; i < small.predictions.size(); ++i) {
    EXPECT_EQ(small.predictions[i].seq, chunk_sized.predictions[i].seq);
    EXPECT_EQ(small.predictions[i].n_tokens, chunk_sized.predictions[i].n_tokens)
        << "seq " << small.predictions[i].seq;
  }
}

TEST_F(SessionReplayTest, paced_replay_runs_the_deadline_ticker_and_still_predicts_every_chunk) {
  SessionReplayOptions o;
  o.from_ns = session_.end_ns - 1 * core::kNsPerS;
  o.to_ns = session_.end_ns;
  o.speed = 20.0;  // 1 s of session in ~50 ms
  expect_every_chunk_once_in_order(play(o));
}

}  // namespace
}  // namespace spikeflow::pipeline
