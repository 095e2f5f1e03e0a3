// spikeflow pretrain / calibrate: a multi-session base, its calibration with the printed
// comparison, and data-parallel ranks (local, and a killed rank ending the others).
#include "tests/cli/cli_test_support.h"

namespace spikeflow {
namespace {

class PretrainCliTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }
  void SetUp() override {
    auto c = start({"synth", "--sessions", "3", "--duration-s", "40", "--min-units", "10",
                    "--max-units", "20", "-o", path("corpus")},
                   path("synth.log"));
    ASSERT_EQ(wait_exit(c), 0) << slurp(path("synth.log"));
  }
  std::vector<std::string> tiny() const {
    return {"--dim", "16", "--rnn-hidden", "32", "--threads", "1", "--no-progress", "--batch", "8"};
  }
  testing::TempDir dir_{"cli_pretrain"};
};


TEST_F(PretrainCliTest, pretrain_then_calibrate_prints_the_comparison) {
  std::vector<std::string> args{"pretrain",
                                "-s",
                                path("corpus/session_00.sfs"),
                                "-s",
                                path("corpus/session_01.sfs"),
                                "-o",
                                path("base.ckpt"),
                                "--epochs",
                                "2"};
  for (const auto& t : tiny()) args.push_back(t);
  auto p = start(args, path("pretrain.log"));
  ASSERT_EQ(wait_exit(p), 0) << slurp(path("pretrain.log"));
  const std::string pout = slurp(path("pretrain.log"));
  for (const char* k : {"session 0: session_00", "session 1: session_01", "[default]",
                        "validation R2", "windows/s"})
    EXPECT_NE(pout.find(k), std::string::npos) << k << " in " << pout;
  auto c = start({"calibrate", "--base", path("base.ckpt"), "-s", path("corpus/session_02.sfs"),
                  "--calibration-s", "20", "-o", path("new.ckpt"), "--reid-epochs", "2",
                  "--finetune-epochs", "1", "--threads", "1", "--no-progress"},
                 path("cal.log"));
  ASSERT_EQ(wait_exit(c), 0) << slurp(path("cal.log"));
  const std::string out = slurp(path("cal.log"));
  for (const char* k : {"calibrated     R2", "scratch        R2", "ridge (250 ms) R2",
                        "kalman         R2", "unit re-identification"})
    EXPECT_NE(out.find(k), std::string::npos) << k << " in " << out;
  EXPECT_TRUE(out.find("beats the calibrated model") != std::string::npos ||
              out.find("the calibrated model is best") != std::string::npos)
      << out;
  EXPECT_TRUE(fs::exists(path("new.ckpt")));
  // A calibration block that reaches into the held-out part is refused.
  auto bad = start({"calibrate", "--base", path("base.ckpt"), "-s", path("corpus/session_02.sfs"),
                    "--calibration-s", "39", "-o", path("x.ckpt")},
                   path("bad.log"));
  EXPECT_NE(wait_exit(bad), 0);
  EXPECT_NE(slurp(path("bad.log")).find("overlaps the held-out"), std::string::npos)
      << slurp(path("bad.log"));
}

TEST_F(PretrainCliTest, local_ranks_train_data_parallel) {
  std::vector<std::string> args{"pretrain", "--sessions", path("corpus"), "-o", path("dp.ckpt"),
                                "--epochs", "1",          "--ranks",      "2"};
  for (const auto& t : tiny()) args.push_back(t);
  auto p = start(args, path("dp.log"));
  ASSERT_EQ(wait_exit(p), 0) << slurp(path("dp.log"));
  EXPECT_NE(slurp(path("dp.log")).find("data-parallel over 2 ranks"), std::string::npos)
      << slurp(path("dp.log"));
  EXPECT_TRUE(fs::exists(path("dp.ckpt")));
}

// Rank 1 killed mid-run (after rank 0 finished an epoch): rank 0 exits non-zero with a one-line
// error naming itself within the collective timeout, instead of hanging.
TEST_F(PretrainCliTest, a_killed_rank_ends_the_other_with_a_clear_error) {
  const std::string master = "127.0.0.1:" + std::to_string(testing::free_tcp_port());
  std::vector<Child> ranks;
  for (int r = 0; r < 2; ++r) {
    std::vector<std::string> args{"pretrain",
                                  "--sessions",
                                  path("corpus"),
                                  "-o",
                                  path("k.ckpt"),
                                  "--epochs",
                                  "1000",
                                  "--patience",
                                  "1000",
                                  "--world-size",
                                  "2",
                                  "--rank",
                                  std::to_string(r),
                                  "--master",
                                  master,
                                  "--dist-timeout-s",
                                  "10"};
    for (const auto& t : tiny()) args.push_back(t);
    ranks.push_back(start(args, path("rank" + std::to_string(r) + ".log")));
  }
  ASSERT_TRUE(testing::wait_until([&] { return fs::exists(path("k.ckpt.resume")); },
                                  std::chrono::seconds(120)))
      << slurp(path("rank0.log"));
  ASSERT_EQ(::kill(ranks[1].pid, SIGKILL), 0);
  EXPECT_EQ(wait_exit(ranks[1]), 128 + SIGKILL);
  int status = 0;
  pid_t done = 0;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        done = waitpid(ranks[0].pid, &status, WNOHANG);
        return done == ranks[0].pid;
      },
      std::chrono::seconds(120)));
  if (done != ranks[0].pid) {
    ::kill(ranks[0].pid, SIGKILL);
    waitpid(ranks[0].pid, &status, 0);
    FAIL() << "rank 0 did not exit after rank 1 died";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  const std::string out = slurp(path("rank0.log"));
  EXPECT_NE(out.find("data-parallel rank 0"), std::string::npos) << out;
}

// The same through the local launcher: one of the ranks `--ranks 2` started is SIGKILLed; the
// other ends with its one-line error and the launcher exits non-zero naming the killed rank.
TEST_F(PretrainCliTest, a_killed_local_rank_ends_the_launcher_with_a_clear_error) {
  std::vector<std::string> args{"pretrain",  "--sessions", path("corpus"),       "-o",
                                path("l.ckpt"), "--epochs",   "1000",             "--patience",
                                "1000",      "--ranks",    "2",                "--dist-timeout-s",
                                "10"};
  for (const auto& t : tiny()) args.push_back(t);
  auto launcher = start(args, path("launcher.log"));
  ASSERT_TRUE(testing::wait_until([&] { return fs::exists(path("l.ckpt.resume")); },
                                  std::chrono::seconds(120)))
      << slurp(path("launcher.log"));
  // The launcher's children, in start order: rank 0, rank 1.
  const std::string task = "/proc/" + std::to_string(launcher.pid) + "/task/" +
                           std::to_string(launcher.pid) + "/children";
  std::vector<pid_t> children;
  {
    std::ifstream in(task);
    for (pid_t p = 0; in >> p;) children.push_back(p);
  }
  ASSERT_EQ(children.size(), 2u) << task;
  ASSERT_EQ(::kill(children[1], SIGKILL), 0);
  int status = 0;
  pid_t done = 0;
  EXPECT_TRUE(testing::wait_until(
      [&] {
        done = waitpid(launcher.pid, &status, WNOHANG);
        return done == launcher.pid;
      },
      std::chrono::seconds(120)));
  if (done != launcher.pid) {
    ::kill(children[0], SIGKILL);
    ::kill(launcher.pid, SIGKILL);
    waitpid(launcher.pid, &status, 0);
    FAIL() << "the launcher did not exit after rank 1 died";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  const std::string out = slurp(path("launcher.log"));
  EXPECT_NE(out.find("rank 1 (pid " + std::to_string(children[1]) + ") was killed by signal 9"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("data-parallel rank 0"), std::string::npos) << out;
}

}  // namespace
}  // namespace spikeflow
