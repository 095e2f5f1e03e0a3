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
#include <zmq.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/file_check.h"
#include "core/chunk_flags.h"
#include "models/trainer.h"
#include "replay/recording_file.h"
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

Child start_program(const std::string& exe, std::vector<std::string> args, const std::string& log) {
  args.insert(args.begin(), exe);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  Child c;
  c.log = log;
  EXPECT_EQ(posix_spawn(&c.pid, exe.c_str(), &fa, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&fa);
  return c;
}

Child start(std::vector<std::string> args, const std::string& log) {
  return start_program(SPIKEFLOW_EXE, std::move(args), log);
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

size_t lines(const std::string& s) {
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

// The exit codes of cli/exit_codes.h, as a user's script sees them.
constexpr int kExitUsage = 2;
constexpr int kExitInputFile = 3;
constexpr int kExitMismatch = 4;

class CliTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }
  /// Runs the binary to the end: exit code and everything it printed (stdout and stderr).
  std::pair<int, std::string> run(const std::vector<std::string>& args) const {
    auto c = start(args, path("run.log"));
    const int rc = wait_exit(c);
    return {rc, slurp(c.log)};
  }
  /// A 6 s synthetic session (120 chunks of 50 ms from t = 0) and an untrained checkpoint for it.
  void make_session_and_checkpoint() {
    auto [rc, out] =
        run({"synth", "-o", path("s.sfs"), "--units", "16", "--duration-s", "6", "--seed", "2"});
    ASSERT_EQ(rc, 0) << out;
    std::vector<core::UnitKey> units;
    for (uint32_t i = 1; i <= 16; ++i) units.push_back({i, 1});
    models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
  }
  /// A listen CSV with one row per chunk seq in [from, to) of 50 ms chunks; `value(seq)` is v0.
  void write_predictions(const std::string& name, int64_t from, int64_t to,
                         const std::string& v0 = "0.5") const {
    std::ofstream out(path(name));
    out << "seq,start_ns,end_ns,flags,n_tokens,v0,v1,trigger_arrival_ns,publish_ns,receive_ns\n";
    for (int64_t s = from; s < to; ++s) {
      out << s << ',' << s * 50'000'000 << ',' << (s + 1) * 50'000'000 << ",0,3,"
          << (s == from + 3 ? v0 : "0.5") << ',' << 0.01 * static_cast<double>(s) << ",0,0,0\n";
    }
  }
  testing::TempDir dir_{"cli"};
};

// Each case is something a new user tried that used to give a misleading answer (issue 11): now
// one line naming the file and the problem, and the input-file exit code.
TEST_F(CliTest, a_directory_or_a_file_of_another_kind_is_named_for_what_it_is) {
  make_session_and_checkpoint();
  fs::create_directory(path("d.ckpt"));
  fs::create_directory(path("d.sfs"));
  fs::create_directory(path("d.sfrec"));
  write_predictions("p.csv", 0, 120);
  // An HDF5 file (signature, no MATLAB header) named .mat: said to be that, not NWB's wording.
  std::ofstream(path("x.mat"), std::ios::binary)
      << std::string("\x89HDF\r\n\x1a\n", 8) << std::string(600, '\0');
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"replay", "-s", path("s.sfs"), "--checkpoint", path("d.ckpt")},
       "checkpoint '" + path("d.ckpt") + "': is a directory, not a checkpoint file"},
      {{"eval", "-s", path("d.sfs"), "-p", path("p.csv")},
       path("d.sfs") + ": is a directory, not a session file"},
      {{"replay", "-s", path("d.sfs"), "--checkpoint", path("m.ckpt")},
       path("d.sfs") + ": is a directory, not a session file"},
      {{"replay", "-r", path("d.sfrec")},
       path("d.sfrec") + ": is a directory, not a recording file"},
      {{"eval", "-s", path("s.sfs"), "-r", path("d.sfrec")},
       path("d.sfrec") + ": is a directory, not a recording file"},
      {{"eval", "-s", path("x.mat"), "-p", path("p.csv")},
       path("x.mat") + ": is an HDF5 file without MATLAB's header, so not a MAT file (an NWB file? "
                       "name it .nwb)"},
      {{"eval", "-s", path("m.ckpt"), "-p", path("p.csv")},
       path("m.ckpt") + ": is a spikeflow checkpoint, not a session (pass it with --checkpoint)"},
      {{"replay", "-s", path("s.sfs"), "--checkpoint", path("s.sfs")},
       "checkpoint '" + path("s.sfs") +
           "': not a spikeflow checkpoint: it is a spikeflow session file (.sfs)"},
      {{"eval", "-s", path("s.sfs"), "-p", path("nope.csv")},
       path("nope.csv") + ": no such predictions file"},
      {{"send", "-s", path("d.sfs")}, path("d.sfs") + ": is a directory, not a session file"},
      {{"train", "-s", path("d.sfs"), "-o", path("out.ckpt")},
       path("d.sfs") + ": is a directory, not a session file"},
  };
  for (const auto& [args, message] : cases) {
    std::string line;
    for (const auto& x : args) line += x + " ";
    const auto [rc, out] = run(args);
    EXPECT_EQ(rc, kExitInputFile) << line << ": " << out;
    EXPECT_EQ(out, "spikeflow: error: " + message + "\n") << line;
  }
  EXPECT_EQ(core::sniff_file(path("m.ckpt")),
            core::FileFormat::kCheckpoint);  // the writer's real magic
}

TEST_F(CliTest, a_recording_cut_after_its_header_says_what_is_missing) {
  make_session_and_checkpoint();
  auto [rc, out] = run({"run", "--checkpoint", path("m.ckpt"), "--port", "0", "--publish",
                        "tcp://127.0.0.1:*", "--record", path("r.sfrec"), "--duration-s", "0.2"});
  ASSERT_EQ(rc, 0) << out;
  std::ifstream in(path("r.sfrec"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 100u);
  EXPECT_EQ(core::sniff_file(path("r.sfrec")), core::FileFormat::kRecording);
  std::ofstream(path("cut.sfrec"), std::ios::binary) << bytes.substr(0, 40);  // the header alone
  std::tie(rc, out) = run({"replay", "-r", path("cut.sfrec")});
  EXPECT_EQ(rc, kExitInputFile) << out;
  EXPECT_EQ(
      out,
      "spikeflow: error: " + path("cut.sfrec") +
          ": recording ends after 40 bytes (its header alone): no config, model or unit-map record "
          "(nothing to replay)\n");
  std::tie(rc, out) = run({"eval", "-s", path("s.sfs"), "-r", path("cut.sfrec")});
  EXPECT_EQ(rc, kExitInputFile) << out;
  EXPECT_EQ(out, "spikeflow: error: " + path("cut.sfrec") +
                     ": recording ends after 40 bytes (its header alone): no prediction record "
                     "(nothing to score)\n");
  // Cut inside the first record: the warning says where, the error what is missing.
  std::ofstream(path("cut2.sfrec"), std::ios::binary) << bytes.substr(0, 60);
  std::tie(rc, out) = run({"replay", "-r", path("cut2.sfrec")});
  EXPECT_EQ(rc, kExitInputFile) << out;
  EXPECT_NE(out.find("spikeflow: error: " + path("cut2.sfrec") +
                     ": recording ends after 60 bytes, cut inside a record: "
                     "no config, model or unit-map record"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("checkpoint ''"), std::string::npos) << out;
}

TEST_F(CliTest, eval_refuses_nan_predictions_and_says_na_when_nothing_matched) {
  make_session_and_checkpoint();
  for (const char* bad : {"nan", "inf", "-inf"}) {
    write_predictions("nan.csv", 0, 120, bad);
    const auto [rc, out] =
        run({"eval", "-s", path("s.sfs"), "-p", path("nan.csv"), "--part", "all"});
    EXPECT_EQ(rc, kExitInputFile) << out;
    EXPECT_EQ(lines(out), 1u) << out;
    EXPECT_EQ(
        out.rfind("spikeflow: error: " + path("nan.csv") + ":5: prediction value is not finite", 0),
        0u)
        << out;
  }
  // No prediction at all, or none of this session's chunks (seq past its end): scores are n/a.
  write_predictions("none.csv", 0, 0);
  write_predictions("other.csv", 1000, 1010);
  for (const auto& [name, why] : std::vector<std::pair<std::string, std::string>>{
           {"none.csv", "(it holds none)"},
           {"other.csv", "(10 read: 10 outside --part all, 0 of another chunk width)"}}) {
    const auto [rc, out] = run({"eval", "-s", path("s.sfs"), "-p", path(name), "--part", "all"});
    EXPECT_EQ(rc, kExitMismatch) << out;
    EXPECT_NE(out.find("R2: mean n/a, vx n/a, vy n/a"), std::string::npos) << out;
    EXPECT_NE(out.find("Pearson r: mean n/a, vx n/a, vy n/a"), std::string::npos) << out;
    EXPECT_EQ(out.find("0.0000"), std::string::npos) << out;
    EXPECT_NE(out.find("spikeflow: error: " + path(name) +
                       ": no predictions matched the session's chunks " + why + "\n"),
              std::string::npos)
        << out;
  }
  // Some chunks without a prediction: scored, then the mismatch code and a line saying how many.
  write_predictions("part.csv", 0, 100);
  auto [rc, out] = run({"eval", "-s", path("s.sfs"), "-p", path("part.csv"), "--part", "all"});
  EXPECT_EQ(rc, kExitMismatch) << out;
  EXPECT_NE(out.find("spikeflow: error: " + path("part.csv") +
                     ": 20 of 120 chunks of the session have no prediction"),
            std::string::npos)
      << out;
  write_predictions("all.csv", 0, 120);
  std::tie(rc, out) = run({"eval", "-s", path("s.sfs"), "-p", path("all.csv"), "--part", "all"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("chunks: 120 matched of 120"), std::string::npos) << out;
}

TEST_F(CliTest, usage_errors_exit_two) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"run", "--port", "70000"},
                                             {"eval", "-s", "s.sfs"},
                                             {"replay", "-s", "s.sfs"},
                                             {"no-such-command"}}) {
    EXPECT_EQ(run(args).first, kExitUsage) << args[0] << ": " << run(args).second;
  }
  EXPECT_EQ(run({"--version"}).first, 0);
}

TEST_F(CliTest, missing_config_is_one_line_naming_the_file_and_a_nonzero_exit) {
  auto c = start({"run", "-c", path("nope.yaml")}, path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  const std::string out = slurp(c.log);
  EXPECT_NE(out.find(path("nope.yaml") + ": no such config file"), std::string::npos) << out;
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
  auto c = start(
      {"run", "--checkpoint", path("m.ckpt"), "--port", "0", "--publish", "tcp://127.0.0.1:*"},
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
  std::ofstream(path("c.yaml"))
      << "chunking: {width_ms: 20, lateness_ms: 2}\ndecoder: {checkpoint: m.ckpt}\n"
         "record: {path: no/such/dir/r.sfrec}\n";
  auto c = start({"run", "-c", path("c.yaml"), "--port", "0", "--publish", "tcp://127.0.0.1:*"},
                 path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  const std::string out = slurp(c.log);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find(path("c.yaml") + ": "), std::string::npos) << out;
  EXPECT_NE(out.find("chunking.width_ms: 20 ms, but checkpoint '" + path("m.ckpt") +
                     "' was trained on 50 ms"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("record.path: folder"), std::string::npos) << out;
  EXPECT_EQ(out.find("run: decoder"), std::string::npos)
      << "must fail before the pipeline starts: " << out;
}

TEST_F(CliTest, run_refuses_a_network_bind_without_an_allow_list_or_remote_opt_in) {
  std::vector<core::UnitKey> units{{1, 1}};
  models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
  std::ofstream(path("c.yaml")) << "ingest: {address: 0.0.0.0}\ndecoder: {checkpoint: m.ckpt}\n";
  auto c = start({"run", "-c", path("c.yaml"), "--port", "0", "--publish", "tcp://*:*"},
                 path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  const std::string out = slurp(c.log);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(
      out.find(
          "ingest.address 0.0.0.0 is not loopback: set ingest.allow to the sources that may send"),
      std::string::npos)
      << out;
  EXPECT_NE(out.find("publish.allow_remote"), std::string::npos) << out;
  EXPECT_EQ(out.find("run: decoder"), std::string::npos)
      << "must fail before the pipeline starts: " << out;
}

TEST_F(CliTest, keygen_writes_a_usable_curve_key_pair_and_never_overwrites_silently) {
  auto c = start({"keygen", "-o", path("server")}, path("out.log"));
  ASSERT_EQ(wait_exit(c), 0) << slurp(c.log);
  auto trim = [](std::string s) { return s.substr(0, s.find_last_not_of("\n") + 1); };
  const std::string secret = trim(slurp(path("server.key_secret"))),
                    pub = trim(slurp(path("server.key")));
  ASSERT_EQ(secret.size(), 40u) << secret;
  ASSERT_EQ(pub.size(), 40u) << pub;
  char derived[41] = {};
  ASSERT_EQ(zmq_curve_public(derived, secret.c_str()), 0) << "the secret key is valid Z85";
  EXPECT_EQ(pub, derived) << "the public key belongs to the secret key";
  EXPECT_EQ(fs::status(path("server.key_secret")).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  // A second run refuses to replace the keys (one line naming the file), unless --force.
  auto again = start({"keygen", "-o", path("server")}, path("again.log"));
  EXPECT_NE(wait_exit(again), 0);
  const std::string out = slurp(again.log);
  EXPECT_NE(out.find(path("server.key_secret")), std::string::npos) << out;
  EXPECT_NE(out.find("--force"), std::string::npos) << out;
  EXPECT_EQ(trim(slurp(path("server.key_secret"))), secret);
  auto forced = start({"keygen", "-o", path("server"), "--force"}, path("forced.log"));
  EXPECT_EQ(wait_exit(forced), 0) << slurp(forced.log);
  EXPECT_NE(trim(slurp(path("server.key_secret"))), secret);
}

// `-c configs/x.yaml` works from any working directory: the checkpoint named inside it is found
// next to the config, and the log names the real ingest format and transport.
TEST_F(CliTest, relative_paths_in_a_config_resolve_against_its_folder) {
  fs::create_directories(dir_.path() / "configs");
  std::vector<core::UnitKey> units{{1, 1}};
  models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
  std::ofstream(path("configs/c.yaml"))
      << "ingest: {transport: tcp}\ndecoder: {checkpoint: ../m.ckpt}\n";
  auto c = start({"run", "-c", path("configs/c.yaml"), "--port", "0", "--publish",
                  "tcp://127.0.0.1:*", "--duration-s", "0.1"},
                 path("out.log"));
  EXPECT_EQ(wait_exit(c), 0) << slurp(c.log);
  EXPECT_NE(slurp(c.log).find("ingest native tcp"), std::string::npos) << slurp(c.log);
}

TEST_F(CliTest, sigterm_and_sigint_drain_and_exit_zero) {
  std::vector<core::UnitKey> units;
  for (uint32_t i = 1; i <= 16; ++i) units.push_back({i, 1});
  models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
  for (int sig : {SIGTERM, SIGINT}) {
    auto c = start(
        {"run", "--checkpoint", path("m.ckpt"), "--port", "0", "--publish", "tcp://127.0.0.1:*"},
        path("run.log"));
    // Ready when it logs its endpoints (a deadline, not a guess).
    ASSERT_TRUE(testing::wait_until([&] {
      return slurp(c.log).find("run: decoder") != std::string::npos;
    })) << slurp(c.log);
    kill(c.pid, sig);
    const int rc = wait_exit(c);
    EXPECT_EQ(rc, 0) << slurp(c.log);
    EXPECT_NE(slurp(c.log).find("drained and stopped"), std::string::npos) << slurp(c.log);
  }
}

TEST_F(CliTest, replay_plays_a_session_through_the_graph_and_scores_it) {
  auto synth =
      start({"synth", "-o", path("s.sfs"), "--units", "16", "--duration-s", "6", "--seed", "2"},
            path("synth.log"));
  ASSERT_EQ(wait_exit(synth), 0) << slurp(synth.log);
  std::vector<core::UnitKey> units;
  for (uint32_t i = 1; i <= 16; ++i) units.push_back({i, 1});
  models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
  for (const char* batch_ms : {"0", "7"}) {
    auto c = start({"replay", "-s", path("s.sfs"), "--checkpoint", path("m.ckpt"), "--part", "all",
                    "--batch-ms", batch_ms},
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

TEST_F(CliTest, version_prints_the_project_version) {
  auto c = start({"--version"}, path("version.log"));
  EXPECT_EQ(wait_exit(c), 0);
  EXPECT_EQ(slurp(c.log), std::string("spikeflow ") + SPIKEFLOW_VERSION + "\n");
}

/// Records a session replay of a 16-unit synthetic session (s.sfs, m.ckpt) into `recording`.
class CliExportTest : public CliTest {
 protected:
  void SetUp() override {
    auto synth =
        start({"synth", "-o", path("s.sfs"), "--units", "16", "--duration-s", "6", "--seed", "2"},
              path("synth.log"));
    ASSERT_EQ(wait_exit(synth), 0) << slurp(synth.log);
    std::vector<core::UnitKey> units;
    for (uint32_t i = 1; i <= 16; ++i) units.push_back({i, 1});
    models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
    record(path("s.sfs"), "rec1.sfrec");
  }
  /// `replay -s session` with a config that records the run into dir/name.
  void record(const std::string& session, const std::string& name) {
    std::ofstream(path(name + ".yaml")) << "record: {path: " << name << "}\n";
    auto c = start({"replay", "-s", session, "--checkpoint", path("m.ckpt"), "-c",
                    path(name + ".yaml"), "--part", "all"},
                   path(name + ".log"));
    ASSERT_EQ(wait_exit(c), 0) << slurp(c.log);
  }
};

// The exported file, replayed as a session, gives back the recording's predictions chunk for
// chunk, bit for bit (flags too, but for how the decoder batched); and the recording's own replay
// agrees with what it recorded.
TEST_F(CliExportTest, export_then_replay_of_the_nwb_gives_the_recorded_predictions) {
  auto ex = start({"export", path("rec1.sfrec"), "-o", path("run.nwb"), "--session", path("s.sfs")},
                  path("ex.log"));
  ASSERT_EQ(wait_exit(ex), 0) << slurp(ex.log);
  EXPECT_NE(slurp(ex.log).find("16 units (0 not in the unit map)"), std::string::npos)
      << slurp(ex.log);
  record(path("run.nwb"), "rec2.sfrec");

  const auto rec1 = replay::read_recording(path("rec1.sfrec"));
  const auto rec2 = replay::read_recording(path("rec2.sfrec"));
  ASSERT_FALSE(rec1.predictions.empty());
  std::map<int64_t, const core::Prediction*> by_start;
  for (const auto& p : rec1.predictions) by_start[p.start_ns] = &p;
  size_t identical = 0;
  for (const auto& p : rec2.predictions) {
    auto it = by_start.find(p.start_ns);
    if (it == by_start.end()) continue;
    const core::Prediction& q = *it->second;
    // kCatchUp says how the decoder's calls were batched, which depends on thread scheduling in an
    // as-fast-as-possible replay; the values are bit-identical either way.
    const uint32_t batching = static_cast<uint32_t>(core::ChunkFlag::kCatchUp);
    if (p.end_ns == q.end_ns && (p.flags & ~batching) == (q.flags & ~batching) &&
        p.n_tokens == q.n_tokens && p.output_dim == q.output_dim &&
        std::memcmp(p.values.data(), q.values.data(),
                    sizeof(float) * static_cast<size_t>(p.output_dim)) == 0) {
      ++identical;
    }
  }
  // Every chunk of the NWB replay is one of the recording's, identical. The NWB session ends 1 ns
  // after its last spike / behaviour sample, so the recording's end-of-stream chunk past that
  // (the .sfs session ran to a round 6 s) is the one chunk the NWB replay may lack.
  EXPECT_EQ(identical, rec2.predictions.size());
  EXPECT_GE(identical + 1, rec1.predictions.size());
  std::printf("export round trip: %zu identical of %zu recorded predictions\n", identical,
              rec1.predictions.size());

  auto own = start({"replay", "-r", path("rec1.sfrec")}, path("own.log"));
  EXPECT_EQ(wait_exit(own), 0) << slurp(own.log);
  const std::string n = std::to_string(rec1.predictions.size());
  EXPECT_NE(slurp(own.log).find("bit-identical " + n + " of " + n), std::string::npos)
      << slurp(own.log);
}

// h5py (python3-h5py) finds every group, table and attribute a pynwb user expects.
TEST_F(CliExportTest, h5py_finds_the_nwb_groups_and_attributes) {
  const std::string python = "/usr/bin/python3";
  auto probe = start_program(python, {"-c", "import h5py"}, path("probe.log"));
  if (wait_exit(probe) != 0) GTEST_SKIP() << "python3-h5py is not installed";
  const std::string script = std::string(SPIKEFLOW_SOURCE_DIR) + "/tests/cli/check_nwb.py";
  for (bool with_session : {true, false}) {
    std::vector<std::string> args{"export", path("rec1.sfrec"), "-o", path("run.nwb")};
    if (with_session) args.insert(args.end(), {"--session", path("s.sfs")});
    auto ex = start(args, path("ex.log"));
    ASSERT_EQ(wait_exit(ex), 0) << slurp(ex.log);
    std::vector<std::string> check{script, path("run.nwb")};
    if (with_session) check.push_back("--session");
    auto c = start_program(python, check, path("check.log"));
    EXPECT_EQ(wait_exit(c), 0) << slurp(c.log);
    EXPECT_NE(slurp(c.log).find("nwb ok:"), std::string::npos) << slurp(c.log);
  }
}

TEST_F(CliExportTest, export_errors_are_one_line_naming_the_file) {
  auto missing = start({"export", path("nope.sfrec"), "-o", path("run.nwb")}, path("m.log"));
  EXPECT_NE(wait_exit(missing), 0);
  EXPECT_NE(slurp(missing.log).find("nope.sfrec"), std::string::npos) << slurp(missing.log);
  auto unwritable =
      start({"export", path("rec1.sfrec"), "-o", path("no/such/dir/run.nwb")}, path("u.log"));
  EXPECT_NE(wait_exit(unwritable), 0);
  EXPECT_NE(slurp(unwritable.log).find("no/such/dir/run.nwb"), std::string::npos)
      << slurp(unwritable.log);
}

TEST_F(CliExportTest, inspect_tells_each_kind_by_content_in_text_and_json) {
  auto ck = start({"inspect", path("m.ckpt")}, path("ck.log"));
  ASSERT_EQ(wait_exit(ck), 0) << slurp(ck.log);
  EXPECT_NE(slurp(ck.log).find("decoder: possm"), std::string::npos) << slurp(ck.log);
  EXPECT_NE(slurp(ck.log).find("row=15, channel=16, unit=1"), std::string::npos) << slurp(ck.log);
  EXPECT_NE(slurp(ck.log).find("target_std"), std::string::npos) << slurp(ck.log);

  // A renamed session is still a session.
  fs::copy_file(path("s.sfs"), path("renamed.bin"));
  auto ss = start({"inspect", path("renamed.bin")}, path("ss.log"));
  ASSERT_EQ(wait_exit(ss), 0) << slurp(ss.log);
  EXPECT_NE(slurp(ss.log).find("kind: session"), std::string::npos) << slurp(ss.log);
  EXPECT_NE(slurp(ss.log).find("units: 16"), std::string::npos) << slurp(ss.log);
  EXPECT_NE(slurp(ss.log).find("channels: [vx, vy]"), std::string::npos) << slurp(ss.log);

  auto rj = start({"inspect", "--json", path("rec1.sfrec")}, path("rj.log"));
  ASSERT_EQ(wait_exit(rj), 0) << slurp(rj.log);
  const std::string json = slurp(rj.log);
  EXPECT_EQ(json.front(), '{') << json;
  EXPECT_EQ(std::count(json.begin(), json.end(), '\n'), 1) << json;
  EXPECT_NE(json.find("\"kind\":\"recording\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"clean_end\":true"), std::string::npos) << json;

  // A torn tail is reported, not fatal.
  {
    const std::string bytes = slurp(path("rec1.sfrec"));
    std::ofstream(path("torn.sfrec"), std::ios::binary) << bytes.substr(0, bytes.size() - 5);
  }
  auto torn = start({"inspect", path("torn.sfrec")}, path("torn.log"));
  ASSERT_EQ(wait_exit(torn), 0) << slurp(torn.log);
  EXPECT_NE(slurp(torn.log).find("truncated: yes"), std::string::npos) << slurp(torn.log);

  // An exported file without behaviour still inspects (spikes and the reason behaviour is absent).
  auto ex = start({"export", path("rec1.sfrec"), "-o", path("run.nwb")}, path("ex.log"));
  ASSERT_EQ(wait_exit(ex), 0) << slurp(ex.log);
  auto nwb = start({"inspect", path("run.nwb")}, path("nwb.log"));
  ASSERT_EQ(wait_exit(nwb), 0) << slurp(nwb.log);
  EXPECT_NE(slurp(nwb.log).find("format: nwb"), std::string::npos) << slurp(nwb.log);
  EXPECT_NE(slurp(nwb.log).find("behaviour not read"), std::string::npos) << slurp(nwb.log);

  std::ofstream(path("notes.txt")) << "hello\n";
  auto bad = start({"inspect", path("notes.txt")}, path("bad.log"));
  EXPECT_NE(wait_exit(bad), 0);
  const std::string err = slurp(bad.log);
  EXPECT_NE(err.find("notes.txt: not a spikeflow"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
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
  EXPECT_NE(slurp(plain.log).find("Position/hand"), std::string::npos)
      << slurp(plain.log);  // found series listed

  auto train = start({"train", "-s", path("pos.nwb"), "-o", path("m.ckpt"), "--behaviour",
                      "Position", "--behaviour-velocity", "--epochs", "2", "--max-seconds", "60",
                      "--dim", "16", "--rnn-hidden", "16"},
                     path("train.log"));
  ASSERT_EQ(wait_exit(train), 0) << slurp(train.log);
  auto rep = start({"replay", "-s", path("pos.nwb"), "--behaviour", "Position",
                    "--behaviour-velocity", "--checkpoint", path("m.ckpt"), "--part", "all"},
                   path("replay.log"));
  EXPECT_EQ(wait_exit(rep), 0) << slurp(rep.log);
  EXPECT_NE(slurp(rep.log).find("out of order 0"), std::string::npos) << slurp(rep.log);
}

}  // namespace
}  // namespace spikeflow

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
  const std::string master = "127.0.0.1:" + std::to_string(free_tcp_port());
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
