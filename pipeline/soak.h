// The soak behind `spikeflow soak`: the live pipeline (`spikeflow run`) as its own process for a
// long time, a sender (`spikeflow send`, one process per segment) at a chosen channel count with
// one fault per segment, and a subscriber in this process feeding a ContractChecker
// (pipeline/contract_checker.h). The pipeline process's RSS, open fds and threads are sampled
// from /proc/PID at the start and every sample_every_s.
//
// Faults, one per segment of fault_every_s, in this order after a fault-free first segment:
// device clock back 20 s, forward 100 s, kill -STOP of the pipeline for 0.3 s, spike rate x10,
// device restart (clock and sequence numbers from 0), kill -STOP for 3 s, sender killed
// (SIGKILL) mid-segment. Every segment boundary is also a sender restart (a new process whose
// packet sequence starts at 0 on a continuing device clock). Blocking; runs on the caller's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace spikeflow::pipeline {

struct SoakOptions {
  std::string executable;  ///< the spikeflow binary run as `run` and `send` child processes
  std::string workdir;     ///< session, model, logs; empty: a temp dir, removed at the end
  double duration_s = 1800;
  int channels = 1024;
  double rate_hz = 15.0;  ///< mean firing rate per channel
  double fault_every_s =
      30;  ///< segment length; 0 = no faults (one continuing sender per segment of 30 s)
  double sample_every_s = 10;
  double warmup_s = 60;  ///< growth is measured from the first sample at or after this
  double max_rss_growth_mb = 20;
};

struct SoakSample {
  double t_s = 0;
  int64_t rss_kb = 0;
  int fds = 0;
  int threads = 0;
};

struct SoakResult {
  std::vector<SoakSample> samples;
  SoakSample start, warm, end, max;  ///< max: of each column separately
  uint64_t received = 0, lost = 0, violations = 0, late_flagged = 0, epochs = 0, new_epoch = 0;
  uint64_t duplicates = 0;
  double max_silence_ms = 0;
  std::vector<std::string> faults;  ///< what each segment injected, with its host time
  std::string checker_summary;
  int run_exit = 0;
  int sender_failures = 0;            ///< senders that exited non-zero (killed ones excluded)
  std::vector<std::string> failures;  ///< why the soak failed; empty = passed
  bool passed() const { return failures.empty(); }
};

/// Runs the soak. on_text gets progress lines. Throws std::runtime_error when the pipeline
/// process cannot start or never becomes ready.
SoakResult run_soak(const SoakOptions& options,
                    const std::function<void(const std::string&)>& on_text);

/// The result as JSON (samples included). Throws std::runtime_error naming path on a write error.
void write_soak_report(const std::string& path, const SoakOptions& options,
                       const SoakResult& result);

}  // namespace spikeflow::pipeline
