// The spikeflow executable as a user runs it: exit codes, one-line errors, and the signal path
// (SIGINT/SIGTERM drain in-flight chunks and exit 0).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "models/trainer.h"
#include "tests/common/test_support.h"
#include "tests/replay/nwb_test_util.h"

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

TEST_F(CliTest, an_nwb_file_with_position_only_trains_and_replays) {
  // A lab's NWB layout: behaviour is a SpatialSeries inside a Position container (nwb-schema
  // core/nwb.behavior.yaml), no hand_vel, no electrodes table. 16 units whose rates follow the
  // hand's velocity, 40 s, position at 100 Hz.
  replay::testing::NwbFixture f;
  f.ids.clear();
  f.spikes_s.clear();
  for (int u = 1; u <= 16; ++u) {
    f.ids.push_back(u);
    std::vector<double> st;
    double t = 0.0;
    uint32_t x = 12345u * static_cast<uint32_t>(u);
    while (t < 40.0) {
      x = x * 1664525u + 1013904223u;
      const double vx = std::cos(t), vy = -std::sin(t);
      const double rate = 20.0 + 15.0 * (u % 2 ? vx : vy) * (u % 4 < 2 ? 1 : -1);
      t += -std::log((x >> 8) / 16777216.0 + 1e-9) / rate;
      if (t < 40.0) st.push_back(t);
    }
    f.spikes_s.push_back(st);
  }
  f.electrodes.reset();
  f.electrode_table_rows = -1;
  f.behavior_group = "/processing/behavior/Position/hand";
  f.behavior.clear();
  std::vector<double> ts;
  for (int i = 0; i < 4000; ++i) {
    const double t = i / 100.0;
    ts.push_back(t);
    f.behavior.push_back(std::sin(t));
    f.behavior.push_back(std::cos(t));
  }
  f.behavior_dims = {4000, 2};
  f.timestamps = ts;
  f.conversion.reset();
  f.offset.reset();
  f.trials = false;
  replay::testing::write_nwb(path("pos.nwb"), f);

  auto plain = start({"train", "-s", path("pos.nwb"), "-o", path("m.ckpt")}, path("plain.log"));
  EXPECT_NE(wait_exit(plain), 0);
  EXPECT_NE(slurp(plain.log).find("Position/hand"), std::string::npos) << slurp(plain.log);  // found series listed

  auto train = start({"train", "-s", path("pos.nwb"), "-o", path("m.ckpt"), "--behaviour", "Position",
                      "--behaviour-velocity", "--epochs", "2", "--max-seconds", "60", "--dim", "16",
                      "--rnn-hidden", "16"},
                     path("train.log"));
  ASSERT_EQ(wait_exit(train), 0) << slurp(train.log);
  auto rep = start({"replay", "-s", path("pos.nwb"), "--behaviour", "Position", "--behaviour-velocity",
                    "--checkpoint", path("m.ckpt"), "--part", "all"},
                   path("replay.log"));
  EXPECT_EQ(wait_exit(rep), 0) << slurp(rep.log);
  EXPECT_NE(slurp(rep.log).find("out of order 0"), std::string::npos) << slurp(rep.log);
}

}  // namespace
}  // namespace spikeflow
