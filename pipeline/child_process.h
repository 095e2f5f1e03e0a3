// Child processes for the experiment drivers (pipeline/profile_experiment.*, pipeline/soak.*):
// `spikeflow send`, `listen` and `run` started as separate processes, as a rig runs them.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace spikeflow::pipeline {

/// Starts args[0] (an executable path) with args, stdout and stderr going to log_path
/// (truncated). Throws std::runtime_error naming `who` and the program when it cannot start.
inline pid_t spawn_logged(const std::vector<std::string>& args, const std::string& log_path,
                          const std::string& who) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error(who + ": cannot start " + args[0]);
  return pid;
}

/// Waits for pid; its exit code, or 128 when it did not exit normally (killed by a signal).
inline int wait_child(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

}  // namespace spikeflow::pipeline
