// Ridge and Kalman baselines: fit on synthetic data, decode well, round-trip through the shared
// checkpoint container (load_decoder dispatches on the kind).
#include "models/baselines.h"

#include <gtest/gtest.h>

#include "core/r2.h"
#include "models/checkpoint_file.h"
#include "models/load_decoder.h"
#include "models/trainer.h"
#include "synthetic_dataset.h"
#include "tests/common/test_support.h"

namespace spikeflow::models {
namespace {

class BaselinesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    testing::SyntheticOptions o;
    o.num_chunks = 2400;
    train_ = testing::make_synthetic(o);
    o.seed = 2;
    o.num_chunks = 600;
    o.first_seq = 100000;
    test_ = testing::make_synthetic(o);
  }

  void expect_round_trip(const StreamingDecoder& dec, const std::string& kind) {
    const std::string path = dir_.file(kind + ".sfck");
    save_baseline(dec, path);
    EXPECT_EQ(checkpoint_kind(path), kind);
    auto loaded = load_decoder(path, {});
    EXPECT_EQ(loaded->units(), train_.units);
    EXPECT_EQ(loaded->chunk_width_ns(), train_.width_ns);
    auto& mutable_dec = const_cast<StreamingDecoder&>(dec);
    EXPECT_EQ(decode_dataset(*loaded, test_), decode_dataset(mutable_dec, test_));
    try {
      load_decoder(path, RuntimeOptions{"cuda", 1});
      FAIL();
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos);
    }
  }

  spikeflow::testing::TempDir dir_{"base"};
  core::DecodingDataset train_, test_;
};

TEST_F(BaselinesTest, ridge_with_history_decodes_and_round_trips) {
  const BaselineFit fit = fit_ridge(train_);
  EXPECT_GT(fit.lambda, 0);
  const double r2 = core::mean_r2(test_.targets, decode_dataset(*fit.decoder, test_), 2);
  std::printf("[ ridge    ] train R2 %.3f, test R2 %.3f, lambda %g\n", fit.train_r2, r2,
              fit.lambda);
  EXPECT_GT(r2, 0.6);
  // History helps: activity leads the target by 2 chunks.
  const double r2_k1 =
      core::mean_r2(test_.targets, decode_dataset(*fit_ridge(train_, {1, 0}).decoder, test_), 2);
  EXPECT_GT(r2, r2_k1);
  expect_round_trip(*fit.decoder, "ridge");
  // step_many equals step
  std::vector<const core::TokenChunk*> ptrs;
  for (size_t i = 0; i < 10; ++i) ptrs.push_back(&test_.chunks[i]);
  std::vector<float> many(20), one(2);
  fit.decoder->reset();
  fit.decoder->step_many(ptrs, many);
  fit.decoder->reset();
  for (size_t i = 0; i < 10; ++i) {
    fit.decoder->step(test_.chunks[i], one);
    EXPECT_EQ(one[0], many[2 * i]);
    EXPECT_EQ(one[1], many[2 * i + 1]);
  }
}

TEST_F(BaselinesTest, kalman_decodes_and_round_trips) {
  const BaselineFit fit = fit_kalman(train_);
  const double r2 = core::mean_r2(test_.targets, decode_dataset(*fit.decoder, test_), 2);
  std::printf("[ kalman   ] train R2 %.3f, test R2 %.3f\n", fit.train_r2, r2);
  EXPECT_GT(r2, 0.4);
  expect_round_trip(*fit.decoder, "kalman");
}

TEST_F(BaselinesTest, bad_input_and_bad_files) {
  core::DecodingDataset empty = train_;
  empty.chunks.clear();
  empty.targets.clear();
  EXPECT_THROW(fit_ridge(empty), std::invalid_argument);
  EXPECT_THROW(fit_kalman(empty), std::invalid_argument);
  EXPECT_THROW(fit_ridge(train_, {0, 0}), std::invalid_argument);
  auto untrained = make_untrained_possm(PossmConfig{}, train_.units, 2, train_.width_ns, {});
  EXPECT_THROW(save_baseline(*untrained, dir_.file("x")), std::invalid_argument);
  // A ridge checkpoint whose weights do not match its unit map.
  const std::string path = dir_.file("bad.sfck");
  save_baseline(*fit_ridge(train_, {2, 1.0}).decoder, path);
  CheckpointFile ck = CheckpointFile::read(path);
  ck.set_floats("weights", {1.f, 2.f});
  ck.write(path);
  try {
    load_decoder(path, {});
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("weights"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace spikeflow::models
