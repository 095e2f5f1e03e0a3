// Test helpers for running a program (the spikeflow binary) as a child process with its stdout
// and stderr in a log file, as the CLI, profile, live-fault and calibration tests do.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace spikeflow::testing {

struct Child {
  pid_t pid = -1;
  std::string log;  ///< stdout and stderr
};

/// Starts exe with args (argv[0] = exe), stdout and stderr to log (truncated).
inline Child spawn_logged(const std::string& exe, std::vector<std::string> args,
                          const std::string& log) {
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
  EXPECT_EQ(posix_spawn(&c.pid, exe.c_str(), &fa, nullptr, argv.data(), environ), 0) << exe;
  posix_spawn_file_actions_destroy(&fa);
  return c;
}

/// Waits for the child: its exit code, or 128 + the signal that ended it.
inline int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
inline int wait_exit(const Child& c) { return wait_exit(c.pid); }

/// The whole file ("" when it cannot be read).
inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace spikeflow::testing
