// pipeline::check_replay: what an exact replay is held to. A clean recording: every prediction,
// no more. A torn one (the run was killed): the predictions before the last recorded decoder call,
// whose batch may have been recorded only in part; the replay may produce more.
#include <gtest/gtest.h>

#include <vector>

#include "pipeline/recording_replay.h"

namespace spikeflow::pipeline {
namespace {

core::Prediction prediction(int64_t seq, int64_t decode_start_ns) {
  core::Prediction p;
  p.seq = seq;
  p.output_dim = 2;
  p.values[0] = 0.25f * static_cast<float>(seq);
  p.values[1] = -1.0f;
  p.timing.decode_start_ns = decode_start_ns;
  return p;
}

// Decoder calls: {0}, {1, 2}, {3, 4} (shared decode start = one batched call).
std::vector<core::Prediction> five() {
  return {prediction(0, 10), prediction(1, 20), prediction(2, 20), prediction(3, 30),
          prediction(4, 30)};
}

TEST(RecordingCheckTest, clean_recording_is_held_to_every_prediction_and_no_more) {
  replay::Recording rec;
  rec.clean_end = true;
  rec.predictions = five();
  auto c = check_replay(five(), rec);
  EXPECT_EQ(c.compared, 5u);
  EXPECT_TRUE(c.comparison.all_identical);
  auto more = five();
  more.push_back(prediction(5, 40));
  EXPECT_FALSE(check_replay(more, rec).comparison.all_identical);
}

TEST(RecordingCheckTest, torn_recording_leaves_out_the_last_decoder_call_and_allows_more) {
  replay::Recording rec;
  rec.clean_end = false;
  rec.predictions = five();
  rec.predictions.pop_back();  // the kill came between the two predictions of the last call
  auto replayed = five();
  replayed[3].values[0] = 99.0f;  // decoded as a batch of one on replay: may differ
  replayed.push_back(prediction(5, 40));
  const auto c = check_replay(replayed, rec);
  EXPECT_EQ(c.compared, 3u);
  EXPECT_EQ(c.incomplete_tail, 1u);
  EXPECT_EQ(c.extra_replayed, 2u);
  EXPECT_EQ(c.comparison.identical, 3u);
  EXPECT_TRUE(c.comparison.all_identical);
}

TEST(RecordingCheckTest, torn_recording_still_fails_on_a_difference_or_a_missing_prediction) {
  replay::Recording rec;
  rec.predictions = five();
  auto replayed = five();
  replayed[1].values[1] = 0.0f;
  auto c = check_replay(replayed, rec);
  EXPECT_FALSE(c.comparison.all_identical);
  EXPECT_EQ(c.comparison.first_difference, 1u);
  replayed = five();
  replayed.resize(2);  // the replay stopped short of what was recorded
  EXPECT_FALSE(check_replay(replayed, rec).comparison.all_identical);
}

}  // namespace
}  // namespace spikeflow::pipeline
