#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <stdexcept>

#include "core/chunk_flags.h"
#include "stages/decode_stage.h"

namespace spikeflow::stages {
namespace {

// A scripted decoder: outputs (token count, seq) or NaN / throws on request, and records calls.
class ScriptedDecoder : public models::StreamingDecoder {
 public:
  int steps = 0, many_calls = 0, resets = 0, prepares = 0;
  int64_t nan_seq = -1, throw_seq = -1;
  bool prepare_throws = false;
  std::vector<core::UnitKey> units_{{1, 1}};

  void reset() override { ++resets; }
  void step(const core::TokenChunk& c, std::span<float> out) override {
    ++steps;
    fill(c, out);
  }
  void step_many(std::span<const core::TokenChunk* const> cs, std::span<float> out) override {
    ++many_calls;
    for (size_t i = 0; i < cs.size(); ++i) fill(*cs[i], out.subspan(2 * i, 2));
  }
  void prepare_next() override {
    ++prepares;
    if (prepare_throws) throw std::runtime_error("prepare failed");
  }
  int output_dim() const override { return 2; }
  const std::vector<core::UnitKey>& units() const override { return units_; }
  int64_t chunk_width_ns() const override { return 50'000'000; }
  std::string describe() const override { return "scripted"; }

 private:
  void fill(const core::TokenChunk& c, std::span<float> out) {
    if (c.seq == throw_seq) throw std::runtime_error("boom");
    out[0] = static_cast<float>(c.size());
    out[1] = c.seq == nan_seq ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(c.seq);
  }
};

int64_t fake_clock() {
  static int64_t t = 0;
  return t += 10;
}

core::TokenChunk chunk(int64_t seq, int tokens) {
  core::TokenChunk c;
  c.seq = seq;
  for (int i = 0; i < tokens; ++i) {
    c.unit.push_back(0);
    c.offset_s.push_back(0.01f);
  }
  return c;
}

TEST(DecodeStageTest, one_prediction_per_chunk_with_timing) {
  auto dec = std::make_unique<ScriptedDecoder>();
  DecodeStage stage(std::move(dec), &fake_clock);
  std::vector<core::TokenChunk> in{chunk(5, 3)};
  std::vector<core::Prediction> out;
  stage.decode(in, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].seq, 5);
  EXPECT_EQ(out[0].output_dim, 2);
  EXPECT_EQ(out[0].values[0], 3.0f);
  EXPECT_EQ(out[0].n_tokens, 3u);
  EXPECT_GT(out[0].timing.decode_end_ns, out[0].timing.decode_start_ns);
}

TEST(DecodeStageTest, pending_chunks_are_decoded_in_one_batched_call_and_flagged) {
  auto dec = std::make_unique<ScriptedDecoder>();
  auto* raw = dec.get();
  DecodeStage stage(std::move(dec), &fake_clock);
  std::vector<core::TokenChunk> in{chunk(1, 1), chunk(2, 2), chunk(3, 0)};
  std::vector<core::Prediction> out;
  stage.decode(in, out);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(raw->many_calls, 1);
  EXPECT_EQ(raw->steps, 0);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i].seq, i + 1);
    EXPECT_TRUE(core::has_flag(out[i].flags, core::ChunkFlag::kCatchUp));
  }
  EXPECT_EQ(stage.stats().batched_calls, 1u);
  EXPECT_EQ(stage.stats().max_batch, 3u);
}

TEST(DecodeStageTest, non_finite_output_is_replaced_by_last_good_and_state_reset) {
  auto dec = std::make_unique<ScriptedDecoder>();
  auto* raw = dec.get();
  raw->nan_seq = 2;
  DecodeStage stage(std::move(dec), &fake_clock);
  std::vector<core::Prediction> out;
  std::vector<core::TokenChunk> a{chunk(1, 4)};
  std::vector<core::TokenChunk> b{chunk(2, 9)};
  stage.decode(a, out);
  stage.decode(b, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(std::isfinite(out[1].values[0]) && std::isfinite(out[1].values[1]));
  EXPECT_EQ(out[1].values[0], 4.0f);  // last good, not this chunk's partial output
  EXPECT_EQ(out[1].values[1], 1.0f);
  EXPECT_TRUE(core::has_flag(out[1].flags, core::ChunkFlag::kOutputRepaired));
  EXPECT_EQ(stage.stats().repaired_outputs, 1u);
  EXPECT_EQ(raw->resets, 1);
}

TEST(DecodeStageTest, a_throwing_decoder_still_yields_a_prediction) {
  auto dec = std::make_unique<ScriptedDecoder>();
  dec->throw_seq = 1;
  DecodeStage stage(std::move(dec), &fake_clock);
  EXPECT_EQ(stage.last_error(), "");
  std::vector<core::Prediction> out;
  std::vector<core::TokenChunk> a{chunk(1, 4)};
  stage.decode(a, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].values[0], 0.0f);
  EXPECT_TRUE(core::has_flag(out[0].flags, core::ChunkFlag::kOutputRepaired));
  EXPECT_EQ(stage.stats().decoder_errors, 1u);
  EXPECT_EQ(stage.last_error(), "boom") << "kept for the pipeline to report";
}

TEST(DecodeStageTest, a_throwing_batched_call_repairs_every_chunk_and_counts_one_error) {
  auto dec = std::make_unique<ScriptedDecoder>();
  dec->throw_seq = 2;
  DecodeStage stage(std::move(dec), &fake_clock);
  std::vector<core::Prediction> out;
  std::vector<core::TokenChunk> in{chunk(1, 1), chunk(2, 2), chunk(3, 3)};
  stage.decode(in, out);
  ASSERT_EQ(out.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(out[i].seq, i + 1);
    EXPECT_TRUE(core::has_flag(out[i].flags, core::ChunkFlag::kOutputRepaired));
    EXPECT_TRUE(std::isfinite(out[i].values[0]) && std::isfinite(out[i].values[1]));
  }
  EXPECT_EQ(stage.stats().decoder_errors, 1u);
  EXPECT_EQ(stage.stats().repaired_outputs, 3u);
  EXPECT_EQ(stage.last_error(), "boom");
}

TEST(DecodeStageTest, prepare_next_reaches_the_decoder_and_a_failure_is_counted_and_resets) {
  auto owned = std::make_unique<ScriptedDecoder>();
  ScriptedDecoder* dec = owned.get();
  DecodeStage stage(std::move(owned), &fake_clock);
  stage.prepare_next();
  EXPECT_EQ(dec->prepares, 1);
  EXPECT_EQ(stage.stats().decoder_errors, 0u);
  dec->prepare_throws = true;
  stage.prepare_next();  // never escapes: the pipeline's decoder node must keep running
  EXPECT_EQ(dec->prepares, 2);
  EXPECT_EQ(stage.stats().decoder_errors, 1u);
  EXPECT_EQ(stage.last_error(), "prepare failed");
  EXPECT_EQ(dec->resets, 1);
  // The next chunk still decodes normally.
  std::vector<core::Prediction> out;
  std::vector<core::TokenChunk> a{chunk(3, 2)};
  stage.decode(a, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].values[1], 3.0f);
}

}  // namespace
}  // namespace spikeflow::stages

namespace spikeflow::stages {
namespace {

// A catch-up batch that crosses into a new device-clock epoch is split there: the recurrent
// state is reset right before the epoch's first chunk, and every chunk still gets one
// prediction carrying its epoch and chunk index.
TEST(DecodeStageEpochTest, new_epoch_resets_the_state_even_inside_a_batch) {
  auto dec = std::make_unique<ScriptedDecoder>();
  auto* raw = dec.get();
  DecodeStage stage(std::move(dec), &fake_clock);
  std::vector<core::TokenChunk> batch{chunk(7, 1), chunk(8, 2), chunk(0, 3), chunk(1, 0)};
  batch[2].epoch = batch[3].epoch = 1;
  core::set_flag(batch[2].flags, core::ChunkFlag::kNewEpoch);
  std::vector<core::Prediction> out;
  stage.decode(batch, out);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(raw->resets, 1);
  EXPECT_EQ(raw->many_calls, 2) << "one call per epoch segment";
  EXPECT_EQ(stage.stats().epoch_resets, 1u);
  const int64_t want_chunk[] = {7, 8, 0, 1};
  const uint32_t want_epoch[] = {0, 0, 1, 1};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(out[i].chunk_index, want_chunk[i]);
    EXPECT_EQ(out[i].epoch, want_epoch[i]);
    EXPECT_TRUE(core::has_flag(out[i].flags, core::ChunkFlag::kCatchUp));
  }
}

}  // namespace
}  // namespace spikeflow::stages
