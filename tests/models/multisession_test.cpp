// Multi-session POSSM: the session embedding and the shared unit vocabulary. The LibTorch model
// run on a whole multi-session batch against the fast streaming path of each session's baked
// view (within 1e-5, GRU and S4D, 20 ms and 50 ms chunks); the format-2 checkpoint (round trip,
// default session, bad metadata); pretraining (per-session R², interrupted + resumed == one
// run); calibration of a new session from a pretrained base.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "models/checkpoint_file.h"
#include "models/fast_possm_export.h"
#include "models/load_decoder.h"
#include "models/trainer.h"
#include "synthetic_dataset.h"
#include "tests/common/test_support.h"

namespace spikeflow::models {
namespace {

using testing::make_synthetic;
using testing::SyntheticOptions;

/// Two sessions of different unit counts, chunk width width_ns (offsets rescaled).
std::vector<core::DecodingDataset> two_sessions(int64_t width_ns, size_t chunks) {
  std::vector<core::DecodingDataset> out;
  for (int s = 0; s < 2; ++s) {
    SyntheticOptions o;
    o.num_units = s == 0 ? 17 : 29;
    o.num_chunks = chunks;
    o.seed = 3 + static_cast<uint64_t>(s);
    o.tuning_seed = 20 + static_cast<uint64_t>(s);
    o.first_channel = 100 * static_cast<uint32_t>(s + 1);
    auto d = make_synthetic(o);
    const float scale = static_cast<float>(width_ns) / static_cast<float>(d.width_ns);
    d.width_ns = width_ns;
    for (auto& ch : d.chunks)
      for (auto& t : ch.offset_s) t *= scale;
    out.push_back(std::move(d));
  }
  return out;
}

PossmMeta multi_meta_for(const std::vector<core::DecodingDataset>& ds, const PossmConfig& c) {
  PossmMeta m;
  m.config = c;
  m.output_dim = 2;
  m.output_names = {"vx", "vy"};
  m.width_ns = ds[0].width_ns;
  for (size_t s = 0; s < ds.size(); ++s) {
    PossmSession ps;
    ps.name = "s" + std::to_string(s);
    ps.unit_begin = static_cast<int64_t>(m.units.size());
    ps.unit_count = static_cast<int64_t>(ds[s].units.size());
    ps.target_mean = {0.5f * static_cast<float>(s), -1.f};
    ps.target_std = {2.f, 0.5f + static_cast<float>(s)};
    m.units.insert(m.units.end(), ds[s].units.begin(), ds[s].units.end());
    m.sessions.push_back(ps);
  }
  m.default_session = 1;
  m.target_mean = m.sessions[1].target_mean;
  m.target_std = m.sessions[1].target_std;
  return m;
}

void expect_fast_matches_multi(const PossmConfig& config, int64_t width_ns) {
  const auto ds = two_sessions(width_ns, 40);
  const PossmMeta meta = multi_meta_for(ds, config);
  torch::manual_seed(5);
  Possm model = make_possm(meta);
  {
    torch::NoGradGuard g;
    model->session_emb.normal_(0.0, 1.0);  // sessions must matter for the comparison
  }
  model->eval();
  // One batch holding both sessions' streams (global unit ids), run by the LibTorch model.
  Windows windows(2);
  std::vector<core::DecodingDataset> shifted = ds;
  for (size_t s = 0; s < 2; ++s) {
    for (auto& ch : shifted[s].chunks)
      for (auto& u : ch.unit) u += static_cast<int32_t>(meta.sessions[s].unit_begin);
    for (const auto& ch : shifted[s].chunks) windows[s].push_back(&ch);
  }
  PaddedBatch pb = collate_padded(windows);
  pb.session = torch::tensor({0, 1}, torch::kLong);
  torch::Tensor ref;
  {
    torch::NoGradGuard g;
    ref = model->forward_padded(pb);  // (2, C, 2) standardized
  }
  float spread_between_sessions = 0.f;
  for (int s = 0; s < 2; ++s) {
    auto [view, vmeta] = session_view(model, meta, s);
    auto fast = make_fast_possm_decoder(view, vmeta);
    float max_diff = 0.f;
    std::vector<float> out(2);
    for (size_t i = 0; i < ds[static_cast<size_t>(s)].size(); ++i) {
      fast->step(ds[static_cast<size_t>(s)].chunks[i], out);
      for (int j = 0; j < 2; ++j) {
        const float std_out =
            (out[static_cast<size_t>(j)] - vmeta.target_mean[static_cast<size_t>(j)]) /
            vmeta.target_std[static_cast<size_t>(j)];
        const float r = ref[s][static_cast<int64_t>(i)][j].item<float>();
        max_diff = std::max(max_diff, std::fabs(std_out - r));
        if (s == 1)
          spread_between_sessions =
              std::max(spread_between_sessions,
                       std::fabs(r - ref[0][static_cast<int64_t>(i)][j].item<float>()));
      }
    }
    std::printf("    session %d (%s, %lld ms): max |fast - torch| = %.3g (standardized)\n", s,
                config.backbone.c_str(), static_cast<long long>(width_ns / 1000000),
                static_cast<double>(max_diff));
    EXPECT_LE(max_diff, 1e-5f);
  }
  EXPECT_GT(spread_between_sessions, 1e-3f);  // the two sessions decode differently
}

TEST(MultiSessionTest, fast_path_matches_torch_gru_50ms) {
  expect_fast_matches_multi(PossmConfig{}, 50'000'000);
}

TEST(MultiSessionTest, fast_path_matches_torch_gru_20ms) {
  PossmConfig c;
  c.rnn_hidden = 64;
  expect_fast_matches_multi(c, 20'000'000);
}

TEST(MultiSessionTest, fast_path_matches_torch_s4d_20ms) {
  PossmConfig c;
  c.backbone = "s4d";
  c.rnn_hidden = 32;
  expect_fast_matches_multi(c, 20'000'000);
}

TEST(MultiSessionTest, checkpoint_round_trip_and_default_session) {
  spikeflow::testing::TempDir dir;
  const auto ds = two_sessions(50'000'000, 10);
  PossmConfig c;
  c.rnn_hidden = 32;
  PossmMeta meta = multi_meta_for(ds, c);
  meta.provenance = "test";
  torch::manual_seed(1);
  Possm model = make_possm(meta);
  const std::string path = (dir.path() / "multi.ckpt").string();
  save_possm_checkpoint(path, model, meta);
  EXPECT_EQ(CheckpointFile::read(path).kind_version, kPossmMultiKindVersion);
  auto [full, fmeta] = load_possm_checkpoint_full(path);
  ASSERT_EQ(fmeta.sessions.size(), 2u);
  EXPECT_EQ(fmeta.sessions[1].name, "s1");
  EXPECT_EQ(fmeta.sessions[1].unit_count, 29);
  EXPECT_EQ(fmeta.default_session, 1);
  EXPECT_EQ(fmeta.provenance, "test");
  EXPECT_TRUE(torch::equal(full->session_emb, model->session_emb));
  // The plain loader (every streaming decoder) serves the default session's view.
  auto [view, vmeta] = load_possm_checkpoint(path);
  EXPECT_TRUE(vmeta.sessions.empty());
  EXPECT_EQ(vmeta.units, ds[1].units);
  EXPECT_EQ(vmeta.target_std, meta.sessions[1].target_std);
  auto dec = load_decoder(path, RuntimeOptions{});
  EXPECT_EQ(dec->units(), ds[1].units);
  const std::string desc = describe_possm_checkpoint(path);
  EXPECT_NE(desc.find("session 1: s1 (29 units)  [default]"), std::string::npos) << desc;
  // Sessions that do not tile the unit map are refused with the file named.
  CheckpointFile ck = CheckpointFile::read(path);
  ck.set_int("session.1.unit_count", 5);
  ck.write(path);
  try {
    load_possm_checkpoint_full(path);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("sessions cover"), std::string::npos) << e.what();
  }
}

TrainOptions tiny_options() { return testing::tiny_train_options(9); }

std::vector<torch::Tensor> weights_of(const std::string& path) {
  auto [model, meta] = load_possm_checkpoint_full(path);
  std::vector<torch::Tensor> out;
  for (const auto& p : model->parameters()) out.push_back(p.detach().clone());
  return out;
}

TEST(MultiSessionTest, pretrain_interrupted_and_resumed_equals_one_run) {
  spikeflow::testing::TempDir dir;
  const auto ds = two_sessions(50'000'000, 300);
  const auto vs = two_sessions(50'000'000, 80);
  const std::vector<TrainSession> sessions{{"a", &ds[0], &vs[0]}, {"b", &ds[1], &vs[1]}};
  PretrainOptions o{tiny_options(), "", 0, {}};
  const std::string once = (dir.path() / "once.ckpt").string();
  const auto r1 = pretrain_possm(sessions, o, once);
  EXPECT_EQ(r1.session_val_r2.size(), 2u);
  EXPECT_EQ(r1.epochs_run, 4);

  o.resume_path = (dir.path() / "twice.ckpt.resume").string();
  o.stop_after_epochs = 2;
  const std::string twice = (dir.path() / "twice.ckpt").string();
  const auto part = pretrain_possm(sessions, o, twice);
  EXPECT_TRUE(part.interrupted);
  EXPECT_FALSE(std::filesystem::exists(twice));
  EXPECT_TRUE(std::filesystem::exists(o.resume_path));
  o.stop_after_epochs = 0;
  const auto r2 = pretrain_possm(sessions, o, twice);
  EXPECT_EQ(r2.resumed_from_epoch, 2);
  EXPECT_FALSE(std::filesystem::exists(o.resume_path));  // finished: the state is removed
  EXPECT_DOUBLE_EQ(r1.best_val_r2, r2.best_val_r2);
  const auto a = weights_of(once), b = weights_of(twice);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "tensor " << i;
}

/// A base pretrained on two sessions (train_chunks / val_chunks each), written to path.
void pretrain_two_session_base(const std::string& path, size_t train_chunks, size_t val_chunks) {
  const auto ds = two_sessions(50'000'000, train_chunks);
  const auto vs = two_sessions(50'000'000, val_chunks);
  pretrain_possm({{"a", &ds[0], &vs[0]}, {"b", &ds[1], &vs[1]}},
                 PretrainOptions{tiny_options(), "", 0, {}}, path);
}

/// A new session to calibrate: new units (other channels, other tuning), little data.
std::pair<core::DecodingDataset, core::DecodingDataset> new_session(size_t cal_chunks,
                                                                    size_t val_chunks) {
  SyntheticOptions o;
  o.num_units = 23;
  o.num_chunks = cal_chunks;
  o.first_channel = 900;
  o.tuning_seed = 77;
  auto cal = make_synthetic(o);
  o.seed = 99;
  o.num_chunks = val_chunks;
  return {std::move(cal), make_synthetic(o)};
}

TEST(MultiSessionTest, calibrate_a_new_session_from_a_base) {
  spikeflow::testing::TempDir dir;
  const std::string base = (dir.path() / "base.ckpt").string();
  pretrain_two_session_base(base, 300, 80);
  const auto [cal, val] = new_session(200, 60);
  CalibrateOptions co;
  co.train = tiny_options();
  co.base = base;
  co.reid_epochs = 2;
  co.finetune_epochs = 2;
  const std::string out = (dir.path() / "new.ckpt").string();
  const auto r = calibrate_possm({"new", &cal, &val}, co, out);
  EXPECT_EQ(r.base_sessions, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.reid.epochs_run, 2);
  EXPECT_EQ(r.finetune.epochs_run, 2);
  auto dec = load_decoder(out, RuntimeOptions{});
  EXPECT_EQ(dec->units(), cal.units);
  for (float v : decode_dataset(*dec, val)) ASSERT_TRUE(std::isfinite(v));
  auto [m, meta] = load_possm_checkpoint_full(out);
  ASSERT_EQ(meta.sessions.size(), 1u);
  EXPECT_NE(meta.provenance.find("calibrated from"), std::string::npos);
  // Everything but the embeddings stayed the base's after stage 1 (checked on the readout when
  // stage 2 was not kept).
  if (!r.finetune_kept) {
    auto [b, bmeta] = load_possm_checkpoint_full(base);
    EXPECT_TRUE(torch::equal(b->readout->weight, m->readout->weight));
  }
  // A single-session checkpoint is not a base.
  const std::string single = (dir.path() / "single.ckpt").string();
  save_untrained_possm(single, tiny_options().model, cal.units, 2, 50'000'000);
  co.base = single;
  EXPECT_THROW(calibrate_possm({"new", &cal, &val}, co, out), std::invalid_argument);
}

}  // namespace
}  // namespace spikeflow::models

namespace spikeflow::models {
namespace {


// Two ranks (threads of this process, each its own c10d Gloo group member over localhost) with
// the same global batch and seed end with the parameters of one rank, within 1e-5 relative.
TEST(DataParallelTest, two_ranks_match_one_rank) {
  if (!c10d_available()) GTEST_SKIP() << "built without c10d Gloo headers";
  spikeflow::testing::TempDir dir;
  const auto ds = two_sessions(50'000'000, 200);
  const auto vs = two_sessions(50'000'000, 40);
  const std::vector<TrainSession> sessions{{"a", &ds[0], &vs[0]}, {"b", &ds[1], &vs[1]}};
  TrainOptions t = tiny_options();
  t.max_epochs = 2;
  t.batch_size = 7;  // an odd global batch: the ranks' shards differ in size
  const std::string one = (dir.path() / "one.ckpt").string();
  pretrain_possm(sessions, PretrainOptions{t, "", 0, {}}, one);
  const std::string two = (dir.path() / "two.ckpt").string();
  const int port = spikeflow::testing::free_tcp_port();
  std::string errors[2];
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.emplace_back([&, r] {
      try {
        PretrainOptions o{t, "", 0, {}};
        o.dist.world_size = 2;
        o.dist.rank = r;
        o.dist.master_port = port;
        o.dist.timeout_s = 30;
        pretrain_possm(sessions, o, two);
      } catch (const std::exception& e) {
        errors[r] = e.what();
      }
    });
  }
  for (auto& th : ranks) th.join();
  ASSERT_EQ(errors[0], "");
  ASSERT_EQ(errors[1], "");
  const auto a = weights_of(one), b = weights_of(two);
  ASSERT_EQ(a.size(), b.size());
  double diff2 = 0, norm2 = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff2 += (a[i] - b[i]).square().sum().item<double>();
    norm2 += a[i].square().sum().item<double>();
  }
  const double rel = std::sqrt(diff2 / norm2);
  std::printf("    |theta_2ranks - theta_1rank| / |theta_1rank| = %.3g\n", rel);
  EXPECT_LE(rel, 1e-5);
}

// A rank that never arrives ends the other's rendezvous within the timeout, with an error that
// names the rank and the master.
TEST(DataParallelTest, a_missing_rank_is_a_clear_error_not_a_hang) {
  if (!c10d_available()) GTEST_SKIP() << "built without c10d Gloo headers";
  const auto ds = two_sessions(50'000'000, 60);
  const auto vs = two_sessions(50'000'000, 20);
  PretrainOptions o{tiny_options(), "", 0, {}};
  o.dist.world_size = 2;
  o.dist.rank = 0;
  o.dist.master_port = spikeflow::testing::free_tcp_port();
  o.dist.timeout_s = 2;
  try {
    pretrain_possm({{"a", &ds[0], &vs[0]}}, o, "");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("rank 0"), std::string::npos) << m;
    EXPECT_NE(m.find("127.0.0.1:" + std::to_string(o.dist.master_port)), std::string::npos) << m;
  }
  o.dist.rank = 2;
  EXPECT_THROW(pretrain_possm({{"a", &ds[0], &vs[0]}}, o, ""), std::invalid_argument);
}

// A CPU LibTorch has no NCCL: --backend nccl is one line saying so, even for a single rank.
TEST(DataParallelTest, nccl_without_a_cuda_libtorch_is_refused_on_one_line) {
  if (nccl_available()) GTEST_SKIP() << "this build has NCCL";
  DistOptions o;
  o.backend = "nccl";
  try {
    validate_dist_options(o);
    FAIL() << "expected an error";
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_NE(m.find("backend 'nccl' needs a CUDA LibTorch with NCCL"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace spikeflow::models

namespace spikeflow::models {
namespace {

// The settings search tries the defaults among its candidates, reports and stores its choice.
TEST(MultiSessionTest, pretrain_search_chooses_and_records_settings) {
  spikeflow::testing::TempDir dir;
  const auto ds = two_sessions(50'000'000, 120);
  const auto vs = two_sessions(50'000'000, 40);
  TrainOptions t = tiny_options();
  t.max_epochs = 8;
  t.search = true;
  t.search_candidates = 3;
  const std::string out = (dir.path() / "s.ckpt").string();
  const auto r = pretrain_possm({{"a", &ds[0], &vs[0]}, {"b", &ds[1], &vs[1]}},
                                PretrainOptions{t, "", 0, {}}, out);
  EXPECT_NE(r.search_report.find("rung 1 (2 epochs): lr 0.003"), std::string::npos)
      << r.search_report;
  EXPECT_NE(r.search_report.find("chose lr"), std::string::npos) << r.search_report;
  auto [m, meta] = load_possm_checkpoint_full(out);
  EXPECT_NE(meta.provenance.find("chose lr"), std::string::npos) << meta.provenance;
}

}  // namespace
}  // namespace spikeflow::models

namespace spikeflow::models {
namespace {

// Calibration's search runs on the calibration block's validation part, few candidates, and its
// choice lands in the calibrated checkpoint.
TEST(MultiSessionTest, calibrate_search_chooses_and_records_settings) {
  spikeflow::testing::TempDir dir;
  const std::string base = (dir.path() / "base.ckpt").string();
  pretrain_two_session_base(base, 200, 60);
  const auto [cal, val] = new_session(160, 50);
  CalibrateOptions co;
  co.train = tiny_options();
  co.train.search = true;
  co.base = base;
  co.reid_epochs = 4;
  co.finetune_epochs = 2;
  const std::string out = (dir.path() / "new.ckpt").string();
  const auto r = calibrate_possm({"new", &cal, &val}, co, out);
  EXPECT_NE(r.search_report.find("LR range test"), std::string::npos) << r.search_report;
  EXPECT_NE(r.search_report.find("(defaults)"), std::string::npos) << r.search_report;
  EXPECT_NE(r.search_report.find("chose lr"), std::string::npos) << r.search_report;
  size_t rung1 = 0;
  for (size_t p = r.search_report.find("rung 1 "); p != std::string::npos;
       p = r.search_report.find("rung 1 ", p + 1))
    ++rung1;
  EXPECT_LE(rung1, 4u);  // tiny data: few candidates
  auto [m, meta] = load_possm_checkpoint_full(out);
  EXPECT_NE(meta.provenance.find("calibrated from"), std::string::npos) << meta.provenance;
  EXPECT_NE(meta.provenance.find("chose lr"), std::string::npos) << meta.provenance;
}

}  // namespace
}  // namespace spikeflow::models
