// SIGINT/SIGTERM handling for long-running commands: block both in every thread (call before
// any thread starts), then poll for them from the control loop. No async signal handler, so
// shutdown runs the ordinary, ordered stop path.
#pragma once

#include <csignal>
#include <ctime>

namespace spikeflow::cli {

inline sigset_t block_termination_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

/// Waits up to timeout_ms for SIGINT/SIGTERM; returns the signal or 0.
inline int wait_termination_signal(const sigset_t& set, int timeout_ms) {
  timespec ts{timeout_ms / 1000, static_cast<long>(timeout_ms % 1000) * 1'000'000L};
  const int sig = sigtimedwait(&set, nullptr, &ts);
  return sig > 0 ? sig : 0;
}

}  // namespace spikeflow::cli
