// Shared by the cli_test_*.cpp files (one test binary, cli_test): the spikeflow executable run as
// a child process with its output in a log file, and the CliTest fixture (a temporary folder).
#pragma once

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
#include "tests/common/child_process.h"
#include "tests/common/test_support.h"
#include "tests/replay/nwb_test_util.h"

extern char** environ;

namespace spikeflow {

namespace fs = std::filesystem;

using testing::Child;
using testing::slurp;
using testing::wait_exit;

inline Child start_program(const std::string& exe, std::vector<std::string> args,
                           const std::string& log) {
  return testing::spawn_logged(exe, std::move(args), log);
}

inline Child start(std::vector<std::string> args, const std::string& log) {
  return start_program(SPIKEFLOW_EXE, std::move(args), log);
}

inline size_t lines(const std::string& s) {
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

}  // namespace spikeflow
