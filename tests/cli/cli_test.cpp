// The spikeflow executable as a user runs it: exit codes, one-line errors, and the signal path
// (SIGINT/SIGTERM drain in-flight chunks and exit 0).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "models/trainer.h"
#include "tests/common/test_support.h"

extern char** environ;

namespace spikeflow {
namespace {

namespace fs = std::filesystem;

struct Child {
  pid_t pid = -1;
  std::string log;
};

Child start(std::vector<std::string> args, const std::string& log) {
  args.insert(args.begin(), SPIKEFLOW_EXE);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  Child c;
  c.log = log;
  EXPECT_EQ(posix_spawn(&c.pid, SPIKEFLOW_EXE, &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  return c;
}

int wait_exit(const Child& c) {
  int status = 0;
  waitpid(c.pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class CliTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }
  testing::TempDir dir_{"cli"};
};

TEST_F(CliTest, missing_config_is_one_line_naming_the_file_and_a_nonzero_exit) {
  auto c = start({"run", "-c", path("nope.yaml")}, path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  const std::string out = slurp(c.log);
  EXPECT_NE(out.find(path("nope.yaml") + ": cannot open the file"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST_F(CliTest, invalid_config_lists_every_problem_on_one_line) {
  std::ofstream(path("bad.yaml")) << "chunking: {width_ms: -5}\npublish: {format: xml}\nbogus: 1\n";
  auto c = start({"run", "-c", path("bad.yaml")}, path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  const std::string out = slurp(c.log);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  for (const char* k : {"chunking.width_ms", "publish.format", "bogus: unknown key"}) {
    EXPECT_NE(out.find(k), std::string::npos) << k << " in " << out;
  }
}

TEST_F(CliTest, corrupt_checkpoint_is_a_clear_error) {
  std::ofstream(path("m.ckpt")) << "not a checkpoint";
  auto c = start({"run", "--checkpoint", path("m.ckpt"), "--port", "0", "--publish", "tcp://127.0.0.1:*"},
                 path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  EXPECT_NE(slurp(c.log).find(path("m.ckpt")), std::string::npos) << slurp(c.log);
}

// A bad value is one line naming the flag (or the file) and a non-zero exit, never a silent
// fallback: each case is something a new user tried.
TEST_F(CliTest, bad_flags_are_one_line_errors_naming_the_flag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"run", "--port", "70000"}, "--port"},
      {{"run", "--port", "-1"}, "--port"},
      {{"run", "--duration-s", "-5"}, "--duration-s"},
      {{"run", "--duration-s", "nan"}, "--duration-s"},
      {{"run", "--duration-s", "inf"}, "--duration-s"},
      {{"send", "-s", "s.sfs", "--port", "99999"}, "--port"},
      {{"send", "-s", "s.sfs", "--speed", "-1"}, "--speed"},
      {{"send", "-s", "s.sfs", "--format", "intan", "--transport", "udp"}, "--transport"},
      {{"send", "-s", "s.sfs", "--interval-ms", "nan"}, "--interval-ms"},
      {{"listen", "--timeout-s", "-1"}, "--timeout-s"},
      {{"listen", "--idle-timeout-s", "inf"}, "--idle-timeout-s"},
      {{"replay", "--speed", "-2"}, "--speed"},
      {{"replay", "--max-batch", "0"}, "--max-batch"},
      {{"profile", "--duration-s", "nan"}, "--duration-s"},
      {{"profile", "--threads", "0"}, "--threads"},
      {{"train", "-s", "s.sfs", "-o", "m.ckpt", "--lr", "inf"}, "--lr"},
      {{"train", "-s", "s.sfs", "-o", "m.ckpt", "--width-ms", "0"}, "--width-ms"},
      {{"train", "-s", "s.sfs", "-o", "m.ckpt", "--train-fraction", "1.5"}, "--train-fraction"},
      {{"synth", "-o", "s.sfs", "--units", "0"}, "--units"},
      {{"synth", "-o", "s.sfs", "--duration-s", "-1"}, "--duration-s"},
      {{"eval", "-s", "s.sfs", "--width-ms", "nan"}, "--width-ms"},
  };
  for (const auto& [args, flag] : cases) {
    std::string line;
    for (const auto& x : args) line += x + " ";
    auto c = start(args, path("out.log"));
    EXPECT_NE(wait_exit(c), 0) << line;
    const std::string out = slurp(c.log);
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << line << ": " << out;
    EXPECT_NE(out.find(flag), std::string::npos) << line << ": " << out;
  }
}

TEST_F(CliTest, a_directory_or_a_duplicate_key_is_not_run_on_defaults) {
  auto c = start({"run", "-c", dir_.path().string()}, path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  std::string out = slurp(c.log);
  EXPECT_NE(out.find(dir_.path().string() + ": is a directory"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;

  std::ofstream(path("dup.yaml")) << "ingest:\n  port: 5000\n  port: 6000\n";
  c = start({"run", "-c", path("dup.yaml")}, path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  out = slurp(c.log);
  EXPECT_NE(out.find(path("dup.yaml") + ": ingest.port: duplicate key"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST_F(CliTest, preflight_lists_config_and_checkpoint_problems_before_anything_starts) {
  std::vector<core::UnitKey> units{{1, 1}, {2, 1}};
  models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
  std::ofstream(path("c.yaml")) << "chunking: {width_ms: 20, lateness_ms: 2}\ndecoder: {checkpoint: m.ckpt}\n"
                                   "record: {path: no/such/dir/r.sfrec}\n";
  auto c = start({"run", "-c", path("c.yaml"), "--port", "0", "--publish", "tcp://127.0.0.1:*"}, path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  const std::string out = slurp(c.log);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find(path("c.yaml") + ": "), std::string::npos) << out;
  EXPECT_NE(out.find("chunking.width_ms: 20 ms, but checkpoint '" + path("m.ckpt") + "' was trained on 50 ms"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("record.path: folder"), std::string::npos) << out;
  EXPECT_EQ(out.find("run: decoder"), std::string::npos) << "must fail before the pipeline starts: " << out;
}

// `-c configs/x.yaml` works from any working directory: the checkpoint named inside it is found
// next to the config, and the log names the real ingest format and transport.
TEST_F(CliTest, relative_paths_in_a_config_resolve_against_its_folder) {
  fs::create_directories(dir_.path() / "configs");
  std::vector<core::UnitKey> units{{1, 1}};
  models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
  std::ofstream(path("configs/c.yaml")) << "ingest: {transport: tcp}\ndecoder: {checkpoint: ../m.ckpt}\n";
  auto c = start({"run", "-c", path("configs/c.yaml"), "--port", "0", "--publish", "tcp://127.0.0.1:*",
                  "--duration-s", "0.1"},
                 path("out.log"));
  EXPECT_EQ(wait_exit(c), 0) << slurp(c.log);
  EXPECT_NE(slurp(c.log).find("ingest native tcp"), std::string::npos) << slurp(c.log);
}

TEST_F(CliTest, sigterm_and_sigint_drain_and_exit_zero) {
  std::vector<core::UnitKey> units;
  for (uint32_t i = 1; i <= 16; ++i) units.push_back({i, 1});
  models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
  for (int sig : {SIGTERM, SIGINT}) {
    auto c = start({"run", "--checkpoint", path("m.ckpt"), "--port", "0", "--publish", "tcp://127.0.0.1:*"},
                   path("run.log"));
    // Ready when it logs its endpoints (a deadline, not a guess).
    ASSERT_TRUE(testing::wait_until([&] { return slurp(c.log).find("run: decoder") != std::string::npos; }))
        << slurp(c.log);
    kill(c.pid, sig);
    const int rc = wait_exit(c);
    EXPECT_EQ(rc, 0) << slurp(c.log);
    EXPECT_NE(slurp(c.log).find("drained and stopped"), std::string::npos) << slurp(c.log);
  }
}

TEST_F(CliTest, replay_plays_a_session_through_the_graph_and_scores_it) {
  auto synth = start({"synth", "-o", path("s.sfs"), "--units", "16", "--duration-s", "6", "--seed", "2"},
                     path("synth.log"));
  ASSERT_EQ(wait_exit(synth), 0) << slurp(synth.log);
  std::vector<core::UnitKey> units;
  for (uint32_t i = 1; i <= 16; ++i) units.push_back({i, 1});
  models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
  for (const char* batch_ms : {"0", "7"}) {
    auto c = start({"replay", "-s", path("s.sfs"), "--checkpoint", path("m.ckpt"), "--part", "all", "--batch-ms",
                    batch_ms},
                   path("replay.log"));
    EXPECT_EQ(wait_exit(c), 0) << slurp(c.log);
    const std::string out = slurp(c.log);
    EXPECT_NE(out.find("predictions, out of order 0, backlog shed 0"), std::string::npos) << out;
    EXPECT_NE(out.find("over 120 chunks"), std::string::npos) << out;
  }
  auto missing = start({"replay", "-s", path("s.sfs")}, path("missing.log"));
  EXPECT_NE(wait_exit(missing), 0);
  EXPECT_NE(slurp(missing.log).find("replay needs --session and --checkpoint"), std::string::npos)
      << slurp(missing.log);
}

}  // namespace
}  // namespace spikeflow

namespace spikeflow {
namespace {

class PretrainCliTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }
  void SetUp() override {
    auto c = start({"synth", "--sessions", "3", "--duration-s", "40", "--min-units", "10", "--max-units", "20",
                    "-o", path("corpus")},
                   path("synth.log"));
    ASSERT_EQ(wait_exit(c), 0) << slurp(path("synth.log"));
  }
  std::vector<std::string> tiny() const {
    return {"--dim", "16", "--rnn-hidden", "32", "--threads", "1", "--no-progress", "--batch", "8"};
  }
  testing::TempDir dir_{"cli_pretrain"};
};

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

TEST_F(PretrainCliTest, pretrain_then_calibrate_prints_the_comparison) {
  std::vector<std::string> args{"pretrain", "-s", path("corpus/session_00.sfs"), "-s",
                                path("corpus/session_01.sfs"), "-o", path("base.ckpt"), "--epochs", "2"};
  for (const auto& t : tiny()) args.push_back(t);
  auto p = start(args, path("pretrain.log"));
  ASSERT_EQ(wait_exit(p), 0) << slurp(path("pretrain.log"));
  const std::string pout = slurp(path("pretrain.log"));
  for (const char* k : {"session 0: session_00", "session 1: session_01", "[default]", "validation R2", "windows/s"})
    EXPECT_NE(pout.find(k), std::string::npos) << k << " in " << pout;
  auto c = start({"calibrate", "--base", path("base.ckpt"), "-s", path("corpus/session_02.sfs"), "--calibration-s",
                  "20", "-o", path("new.ckpt"), "--reid-epochs", "2", "--finetune-epochs", "1", "--threads", "1",
                  "--no-progress"},
                 path("cal.log"));
  ASSERT_EQ(wait_exit(c), 0) << slurp(path("cal.log"));
  const std::string out = slurp(path("cal.log"));
  for (const char* k : {"calibrated     R2", "scratch        R2", "ridge (250 ms) R2", "kalman         R2",
                        "unit re-identification"})
    EXPECT_NE(out.find(k), std::string::npos) << k << " in " << out;
  EXPECT_TRUE(out.find("beats the calibrated model") != std::string::npos ||
              out.find("the calibrated model is best") != std::string::npos)
      << out;
  EXPECT_TRUE(fs::exists(path("new.ckpt")));
  // A calibration block that reaches into the held-out part is refused.
  auto bad = start({"calibrate", "--base", path("base.ckpt"), "-s", path("corpus/session_02.sfs"), "--calibration-s",
                    "39", "-o", path("x.ckpt")},
                   path("bad.log"));
  EXPECT_NE(wait_exit(bad), 0);
  EXPECT_NE(slurp(path("bad.log")).find("overlaps the held-out"), std::string::npos) << slurp(path("bad.log"));
}

TEST_F(PretrainCliTest, local_ranks_train_data_parallel) {
  std::vector<std::string> args{"pretrain", "--sessions", path("corpus"), "-o", path("dp.ckpt"), "--epochs", "1",
                                "--ranks", "2"};
  for (const auto& t : tiny()) args.push_back(t);
  auto p = start(args, path("dp.log"));
  ASSERT_EQ(wait_exit(p), 0) << slurp(path("dp.log"));
  EXPECT_NE(slurp(path("dp.log")).find("data-parallel over 2 ranks"), std::string::npos) << slurp(path("dp.log"));
  EXPECT_TRUE(fs::exists(path("dp.ckpt")));
}

// Rank 1 killed mid-run (after rank 0 finished an epoch): rank 0 exits non-zero with a one-line
// error naming itself within the collective timeout, instead of hanging.
TEST_F(PretrainCliTest, a_killed_rank_ends_the_other_with_a_clear_error) {
  const std::string master = "127.0.0.1:" + std::to_string(free_tcp_port());
  std::vector<Child> ranks;
  for (int r = 0; r < 2; ++r) {
    std::vector<std::string> args{"pretrain", "--sessions", path("corpus"), "-o", path("k.ckpt"), "--epochs",
                                  "1000", "--patience", "1000", "--world-size", "2", "--rank", std::to_string(r),
                                  "--master", master, "--dist-timeout-s", "10"};
    for (const auto& t : tiny()) args.push_back(t);
    ranks.push_back(start(args, path("rank" + std::to_string(r) + ".log")));
  }
  ASSERT_TRUE(testing::wait_until([&] { return fs::exists(path("k.ckpt.resume")); }, std::chrono::seconds(120)))
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
      std::chrono::seconds(60)));
  if (done != ranks[0].pid) {
    ::kill(ranks[0].pid, SIGKILL);
    waitpid(ranks[0].pid, &status, 0);
    FAIL() << "rank 0 did not exit after rank 1 died";
  }
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) != 0);
  const std::string out = slurp(path("rank0.log"));
  EXPECT_NE(out.find("data-parallel rank 0"), std::string::npos) << out;
}

}  // namespace
}  // namespace spikeflow
