#include <gtest/gtest.h>

#include "stages/prediction_codec.h"

namespace spikeflow::stages {
namespace {

core::Prediction sample() {
  core::Prediction p;
  p.seq = 123456789;
  p.start_ns = 50'000'000;
  p.end_ns = 100'000'000;
  p.flags = 5;
  p.n_tokens = 77;
  p.output_dim = 2;
  p.values[0] = 1.5f;
  p.values[1] = -2.25f;
  p.timing = {1, 2, 3, 4, 5, 6};
  return p;
}

TEST(PredictionCodecTest, binary_round_trip_is_exact) {
  std::vector<uint8_t> bytes;
  encode_prediction(sample(), bytes);
  ASSERT_EQ(bytes.size(), kPredictionHeaderBytes + 8);
  core::Prediction q;
  std::string err;
  ASSERT_TRUE(decode_prediction(bytes, q, &err)) << err;
  EXPECT_EQ(q.seq, 123456789);
  EXPECT_EQ(q.start_ns, 50'000'000);
  EXPECT_EQ(q.end_ns, 100'000'000);
  EXPECT_EQ(q.flags, 5u);
  EXPECT_EQ(q.n_tokens, 77u);
  EXPECT_EQ(q.values[0], 1.5f);
  EXPECT_EQ(q.values[1], -2.25f);
  EXPECT_EQ(q.timing.trigger_arrival_ns, 1);
  EXPECT_EQ(q.timing.publish_ns, 6);
}

TEST(PredictionCodecTest, malformed_payloads_are_rejected) {
  std::vector<uint8_t> bytes;
  encode_prediction(sample(), bytes);
  core::Prediction q;
  std::string err;
  auto shorter = bytes;
  shorter.pop_back();
  EXPECT_FALSE(decode_prediction(shorter, q, &err));
  auto bad = bytes;
  bad[0] = 0;
  EXPECT_FALSE(decode_prediction(bad, q, &err));
  EXPECT_NE(err.find("magic"), std::string::npos);
}

TEST(PredictionCodecTest, json_has_every_field) {
  std::string s;
  encode_prediction_json(sample(), s);
  EXPECT_NE(s.find(R"("seq":123456789)"), std::string::npos);
  EXPECT_NE(s.find(R"("values":[1.5,-2.25])"), std::string::npos);
  EXPECT_NE(s.find(R"("publish_ns":6)"), std::string::npos);
}

}  // namespace
}  // namespace spikeflow::stages
