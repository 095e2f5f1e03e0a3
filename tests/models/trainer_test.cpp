// The trainer on small synthetic datasets: reaches a high R² quickly, is repeatable for a seed,
// fine-tunes onto new units, rejects bad input; decode_dataset matches step-by-step decoding.
#include "models/trainer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>

#include "core/r2.h"
#include "models/checkpoint_file.h"
#include "models/load_decoder.h"
#include "synthetic_dataset.h"
#include "tests/common/test_support.h"

namespace spikeflow::models {
namespace {

namespace fs = std::filesystem;

class TrainerTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }

  static TrainOptions quick_options() {
    TrainOptions o;
    o.progress = false;
    o.max_epochs = 8;
    o.seed = 1;
    o.threads = 1;  // ctest may run two test processes at once on the 2 cores
    return o;
  }
  spikeflow::testing::TempDir dir_{"train"};
};

testing::SyntheticOptions split(uint64_t seed, size_t chunks, int64_t first_seq) {
  testing::SyntheticOptions o;
  o.num_units = 40;
  o.num_chunks = chunks;
  o.seed = seed;
  o.first_seq = first_seq;
  return o;
}

TEST_F(TrainerTest, reaches_high_r2_quickly_and_checkpoint_decodes_the_same) {
  const auto train = testing::make_synthetic(split(1, 2400, 0));
  const auto val = testing::make_synthetic(split(2, 400, 10000));
  const auto test = testing::make_synthetic(split(3, 400, 20000));
  const auto t0 = std::chrono::steady_clock::now();
  const TrainResult r = train_possm(train, val, quick_options(), path("m.sfck"));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GT(r.best_val_r2, 0.8);
  EXPECT_EQ(r.best_val_r2_per_dim.size(), 2u);
  EXPECT_GE(r.best_epoch, 1);
  EXPECT_LE(r.best_epoch, r.epochs_run);
  EXPECT_GT(r.num_parameters, 100000u);
  std::printf("[ trainer  ] %d epochs, %.1f s, val R2 %.3f\n", r.epochs_run, s, r.best_val_r2);

  auto dec = load_decoder(path("m.sfck"), {});
  EXPECT_EQ(dec->units(), train.units);
  // The saved weights are the best epoch's: decoding val again gives the reported R².
  EXPECT_NEAR(core::mean_r2(val.targets, decode_dataset(*dec, val), 2), r.best_val_r2, 1e-5);
  const auto pred = decode_dataset(*dec, test);
  EXPECT_GT(core::mean_r2(test.targets, pred, 2), 0.75);
  // decode_dataset (batched through step_many) equals one step() per chunk.
  std::vector<float> one(2);
  dec->reset();
  for (size_t i = 0; i < test.size(); ++i) {
    dec->step(test.chunks[i], one);
    ASSERT_NEAR(one[0], pred[2 * i], 1e-4);
    ASSERT_NEAR(one[1], pred[2 * i + 1], 1e-4);
  }
}

TEST_F(TrainerTest, same_seed_same_weights) {
  const auto train = testing::make_synthetic(split(4, 500, 0));
  const auto val = testing::make_synthetic(split(5, 100, 10000));
  TrainOptions o = quick_options();
  o.max_epochs = 2;
  const TrainResult a = train_possm(train, val, o, path("a.sfck"));
  const TrainResult b = train_possm(train, val, o, path("b.sfck"));
  EXPECT_EQ(a.best_val_r2, b.best_val_r2);
  EXPECT_EQ(a.best_epoch, b.best_epoch);
  EXPECT_EQ(CheckpointFile::read(path("a.sfck")).payload,
            CheckpointFile::read(path("b.sfck")).payload);
  o.seed = 2;
  train_possm(train, val, o, path("c.sfck"));
  EXPECT_NE(CheckpointFile::read(path("a.sfck")).payload,
            CheckpointFile::read(path("c.sfck")).payload);
}

TEST_F(TrainerTest, finetunes_onto_new_units) {
  const auto train = testing::make_synthetic(split(6, 1200, 0));
  const auto val = testing::make_synthetic(split(7, 300, 10000));
  TrainOptions o = quick_options();
  o.max_epochs = 3;
  train_possm(train, val, o, path("base.sfck"));
  // Same "subject" (tuning), 8 more units on new channels.
  auto more = split(8, 600, 0);
  more.num_units = 48;
  auto ft_train = testing::make_synthetic(more);
  more.seed = 9;
  more.first_seq = 10000;
  auto ft_val = testing::make_synthetic(more);
  TrainOptions f = quick_options();
  f.max_epochs = 3;
  f.finetune_from = path("base.sfck");
  f.finetune_frozen_epochs = 1;
  f.model.rnn_hidden = 8;  // ignored: the source checkpoint's config is used
  const TrainResult r = train_possm(ft_train, ft_val, f, path("ft.sfck"));
  EXPECT_GT(r.best_val_r2, 0.5);
  auto dec = load_decoder(path("ft.sfck"), {});
  EXPECT_EQ(dec->units().size(), 48u);
  EXPECT_EQ(CheckpointFile::read(path("ft.sfck")).get_int("config.rnn_hidden"), 256);
}

TEST_F(TrainerTest, stops_at_the_time_budget) {
  const auto train = testing::make_synthetic(split(10, 1200, 0));
  const auto val = testing::make_synthetic(split(11, 200, 10000));
  TrainOptions o = quick_options();
  o.max_epochs = 1000;
  o.patience = 1000;  // only the budget can stop it
  o.max_seconds = 1.5;
  const TrainResult r = train_possm(train, val, o, path("t.sfck"));
  // How far past the budget it runs depends on the machine's load, so only the stop is asserted.
  EXPECT_GE(r.epochs_run, 1);
  EXPECT_LT(r.epochs_run, 1000);
  EXPECT_TRUE(fs::exists(path("t.sfck")));
}

TEST_F(TrainerTest, rejects_bad_options_and_datasets) {
  const auto train = testing::make_synthetic(split(12, 100, 0));
  auto val = testing::make_synthetic(split(13, 50, 1000));
  TrainOptions o = quick_options();
  o.batch_size = 0;
  o.lr = -1;
  try {
    train_possm(train, val, o, path("x.sfck"));
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("batch_size"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("lr"), std::string::npos);
  }
  val.units.pop_back();
  EXPECT_THROW(train_possm(train, val, quick_options(), path("x.sfck")), std::invalid_argument);
  core::DecodingDataset empty = train;
  empty.chunks.clear();
  empty.targets.clear();
  EXPECT_THROW(train_possm(empty, train, quick_options(), path("x.sfck")), std::invalid_argument);
  EXPECT_FALSE(fs::exists(path("x.sfck")));
}

}  // namespace
}  // namespace spikeflow::models
