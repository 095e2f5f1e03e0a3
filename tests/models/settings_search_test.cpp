// The settings search (LR range test + successive halving) and the weights' EMA on tiny
// synthetic data: the search is repeatable for a seed and lands in the checkpoint; the range
// test's suggestion; EMA weights are the ones validated and saved and leave the raw training
// trajectory untouched; bad options are named.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "core/r2.h"
#include "models/checkpoint_file.h"
#include "models/load_decoder.h"
#include "models/possm_decoder.h"
#include "models/settings_search.h"
#include "models/trainer.h"
#include "synthetic_dataset.h"
#include "tests/common/test_support.h"

namespace spikeflow::models {
namespace {

TrainOptions tiny() { return testing::tiny_train_options(3); }

core::DecodingDataset data(uint64_t seed, size_t chunks, int64_t first_seq) {
  testing::SyntheticOptions o;
  o.num_units = 20;
  o.num_chunks = chunks;
  o.seed = seed;
  o.first_seq = first_seq;
  return testing::make_synthetic(o);
}

std::vector<torch::Tensor> weights_of(const std::string& path) {
  auto [model, meta] = load_possm_checkpoint_full(path);
  std::vector<torch::Tensor> out;
  for (const auto& p : model->parameters()) out.push_back(p.detach().clone());
  return out;
}

bool same_weights(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

TEST(SettingsSearchTest, range_test_suggests_a_tenth_of_the_loss_minimum) {
  detail::LrCurve c;
  for (int i = 0; i < 40; ++i) {
    const double lr = 1e-5 * std::pow(10.0, i / 10.0);  // 1e-5 .. ~8e-2
    const double x = std::log10(lr) + 2.0;               // minimum at lr 1e-2
    c.lr.push_back(lr);
    c.loss.push_back(1.0 + x * x);
  }
  const auto s = detail::suggest_lr(c, 3e-3);
  ASSERT_TRUE(s.ok);
  EXPECT_NEAR(s.min_loss_lr, 1e-2, 1e-9);
  EXPECT_NEAR(s.centre, 1e-3, 1e-12);
  EXPECT_FALSE(s.clamped);
  EXPECT_GT(s.steepest_lr, c.lr.front());
  EXPECT_LT(s.steepest_lr, s.min_loss_lr);
  // A loss that only rises says nothing: the default is kept.
  detail::LrCurve up = c;
  for (size_t i = 0; i < up.loss.size(); ++i) up.loss[i] = 1.0 + static_cast<double>(i);
  const auto none = detail::suggest_lr(up, 3e-3);
  EXPECT_FALSE(none.ok);
  EXPECT_EQ(none.centre, 3e-3);
}

TEST(SettingsSearchTest, candidates_start_with_the_defaults_and_have_no_duplicates) {
  TrainOptions o = tiny();
  const auto c = detail::search_candidates(o, o.lr, 8, false);
  ASSERT_GE(c.size(), 5u);
  EXPECT_EQ(c[0].lr, o.lr);
  EXPECT_EQ(c[0].weight_decay, o.weight_decay);
  EXPECT_EQ(c[0].unit_dropout, o.unit_dropout);
  for (size_t i = 1; i < c.size(); ++i) {
    // The centre equals the default lr here: "range test" x1 is a duplicate and dropped.
    const bool dup = c[i].lr == o.lr && c[i].weight_decay == o.weight_decay &&
                     c[i].unit_dropout == o.unit_dropout;
    EXPECT_FALSE(dup) << c[i].why;
  }
  const auto reg = detail::search_candidates(o, o.lr / 2, 3, true);
  ASSERT_EQ(reg.size(), 3u);
  EXPECT_GT(reg[1].weight_decay, o.weight_decay);  // calibration: regularised first
}

TEST(SettingsSearchTest, search_is_repeatable_for_a_seed_and_lands_in_the_checkpoint) {
  spikeflow::testing::TempDir dir("search");
  const auto train = data(1, 300, 0), val = data(2, 80, 10000);
  TrainOptions o = tiny();
  o.search = true;
  o.search_candidates = 4;
  const auto a = train_possm(train, val, o, dir.file("a.ckpt"));
  const auto b = train_possm(train, val, o, dir.file("b.ckpt"));
  EXPECT_NE(a.search_report.find("LR range test"), std::string::npos) << a.search_report;
  EXPECT_NE(a.search_report.find("rung 1"), std::string::npos) << a.search_report;
  EXPECT_NE(a.search_report.find("chose lr"), std::string::npos) << a.search_report;
  EXPECT_EQ(a.search_report, b.search_report);
  EXPECT_EQ(a.lr, b.lr);
  EXPECT_EQ(a.weight_decay, b.weight_decay);
  EXPECT_EQ(a.unit_dropout, b.unit_dropout);
  EXPECT_EQ(CheckpointFile::read(dir.file("a.ckpt")).payload,
            CheckpointFile::read(dir.file("b.ckpt")).payload);
  auto [m, meta] = load_possm_checkpoint_full(dir.file("a.ckpt"));
  EXPECT_NE(meta.provenance.find("trained with lr"), std::string::npos) << meta.provenance;
  EXPECT_NE(meta.provenance.find(a.search_report), std::string::npos) << meta.provenance;
  // One line per candidate per rung: 4 in rung 1, 2 in rung 2, then one is left.
  size_t lines = 0;
  for (size_t p = a.search_report.find("  rung "); p != std::string::npos;
       p = a.search_report.find("  rung ", p + 1))
    ++lines;
  EXPECT_EQ(lines, 6u) << a.search_report;
}

TEST(SettingsSearchTest, ema_off_is_the_plain_run_and_ema_weights_are_validated_and_saved) {
  spikeflow::testing::TempDir dir("ema");
  const auto train = data(3, 300, 0), val = data(4, 80, 10000);
  TrainOptions o = tiny();
  const auto plain = train_possm(train, val, o, dir.file("plain.ckpt"));
  o.ema = 0;  // explicit 0 = off: the same file, no provenance added
  train_possm(train, val, o, dir.file("off.ckpt"));
  EXPECT_EQ(CheckpointFile::read(dir.file("plain.ckpt")).payload,
            CheckpointFile::read(dir.file("off.ckpt")).payload);
  EXPECT_TRUE(load_possm_checkpoint_full(dir.file("off.ckpt")).second.provenance.empty());

  o.ema = 0.9;
  const auto ema = train_possm(train, val, o, dir.file("ema.ckpt"));
  EXPECT_EQ(ema.ema, 0.9);
  EXPECT_FALSE(same_weights(weights_of(dir.file("plain.ckpt")), weights_of(dir.file("ema.ckpt"))));
  // The saved weights are the validated ones: decoding val again gives the reported R².
  auto dec = load_decoder(dir.file("ema.ckpt"), {});
  EXPECT_NEAR(core::mean_r2(val.targets, decode_dataset(*dec, val), 2), ema.best_val_r2, 1e-5);
  EXPECT_NE(load_possm_checkpoint_full(dir.file("ema.ckpt")).second.provenance.find("EMA 0.9"),
            std::string::npos);
  (void)plain;
}

// The average never feeds back into training: after two epochs the raw weights (in the resume
// file) are those of a run without EMA, and the EMA (also in the resume file) differs from them.
TEST(SettingsSearchTest, ema_leaves_the_raw_trajectory_alone_and_resumes) {
  spikeflow::testing::TempDir dir("ema_resume");
  const auto train = data(5, 200, 0), val = data(6, 60, 10000);
  const std::vector<TrainSession> s{{"a", &train, &val}};
  auto raw_after_two = [&](double ema, const std::string& name) {
    PretrainOptions p{tiny(), dir.file(name + ".resume"), 2, {}};
    p.train.ema = ema;
    const auto r = pretrain_possm(s, p, dir.file(name + ".ckpt"));
    EXPECT_TRUE(r.interrupted);
    CheckpointFile ck = CheckpointFile::read(dir.file(name + ".resume"));
    torch::serialize::InputArchive ar, model_ar, ema_ar;
    ar.load_from(ck.payload.data(), ck.payload.size());
    ar.read("model", model_ar);
    if (ema > 0) ar.read("ema", ema_ar);
    std::vector<torch::Tensor> raw, avg;
    auto [m, meta] = load_possm_checkpoint_full(dir.file("ref.ckpt"));
    size_t i = 0;
    for (const auto& p : m->named_parameters(true)) {
      torch::Tensor t;
      model_ar.read(p.key(), t);
      raw.push_back(t);
      if (ema > 0) {
        torch::Tensor e;
        ema_ar.read(std::to_string(i), e);
        avg.push_back(e);
      }
      ++i;
    }
    return std::make_pair(raw, avg);
  };
  pretrain_possm(s, PretrainOptions{tiny(), "", 0, {}}, dir.file("ref.ckpt"));  // the layout
  const auto [raw_off, none] = raw_after_two(0, "off");
  const auto [raw_on, avg] = raw_after_two(0.9, "on");
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(same_weights(raw_off, raw_on));
  EXPECT_FALSE(same_weights(raw_on, avg));
  // Resumed with the EMA: its state comes back from the resume file and the run finishes.
  PretrainOptions p{tiny(), dir.file("on.resume"), 0, {}};
  p.train.ema = 0.9;
  const auto done = pretrain_possm(s, p, dir.file("on.ckpt"));
  EXPECT_EQ(done.resumed_from_epoch, 2);
  EXPECT_TRUE(std::filesystem::exists(dir.file("on.ckpt")));
}

TEST(SettingsSearchTest, rejects_bad_ema_and_candidate_counts) {
  spikeflow::testing::TempDir dir("bad");
  const auto train = data(7, 100, 0), val = data(8, 40, 10000);
  for (double bad : {-0.1, 1.0, std::numeric_limits<double>::quiet_NaN()}) {
    TrainOptions o = tiny();
    o.ema = bad;
    try {
      train_possm(train, val, o, dir.file("x.ckpt"));
      FAIL() << bad;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("ema"), std::string::npos) << e.what();
    }
  }
  TrainOptions o = tiny();
  o.search = true;
  o.search_candidates = 9;
  EXPECT_THROW(train_possm(train, val, o, dir.file("x.ckpt")), std::invalid_argument);
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.ckpt")));
}

}  // namespace
}  // namespace spikeflow::models
