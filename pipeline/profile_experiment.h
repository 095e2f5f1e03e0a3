// The profile experiment behind `spikeflow profile`: latency stage by stage under a chosen load.
// For each channel count, a synthetic session is written, the pipeline under test runs in this
// process, and the sender (`spikeflow send`) and the subscriber (`spikeflow listen`) run as
// separate processes on loopback, exactly as on a rig. End to end is measured from the moment
// the sender handed the chunk-closing packet to the kernel (its send log) to the moment the
// subscriber process received the prediction (its CSV, pipeline/listen_csv.h); both use
// CLOCK_MONOTONIC. Blocking; runs on the caller's thread, one load point after the other.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/latency_histogram.h"

namespace spikeflow::pipeline {

struct ProfileOptions {
  std::string
      executable;       ///< the spikeflow binary whose `send` and `listen` run as child processes
  std::string workdir;  ///< sessions, models, logs and CSVs; empty: a temp dir, removed at the end
  std::vector<int> channels{96, 256, 1024};  ///< load points: channel (unit) counts
  double rate_hz = 15.0;                     ///< mean firing rate per channel
  double duration_s = 10.0;                  ///< seconds of real-time traffic per load point
  std::string
      checkpoint;  ///< decoder to profile where its unit count matches; else an untrained one
  std::string decoder_path = "auto";  ///< auto | fast | torch
  int threads = 1;                    ///< decoder threads
  std::string transport = "tcp";  ///< publisher -> subscriber: tcp (loopback) | ipc (unix socket)
  bool record = false;            ///< the recorder tap on (its cost on latency)
};

/// What one load point measured. Latencies in ns.
struct LoadPoint {
  int channels = 0;
  double events_per_s = 0;
  uint64_t chunks = 0, received = 0;
  uint64_t deadline_closed =
      0;  ///< closed by the clock or at the end: no sender moment to time from
  core::LatencyHistogram send_to_arrival, close, queue, decode, publish, deliver, e2e;
  std::string decoder;  ///< the decoder's describe()
};

struct ProfileResult {
  std::string header;  ///< build, CPU, threads and load settings: one line
  std::vector<LoadPoint> points;
  std::string text;  ///< header and every load point's table, as printed
};

/// Runs every load point. on_text gets the header, then each load point's table as soon as it is
/// measured (progress for a run of minutes). Throws std::runtime_error when a child process cannot
/// start or exits non-zero, or a file cannot be written or read.
ProfileResult run_profile(const ProfileOptions& options,
                          const std::function<void(const std::string&)>& on_text);

/// The HTML report: end to end against load, and per load point a stage table and a histogram.
/// Throws std::runtime_error naming path when it cannot be written.
void write_profile_report(const std::string& path, const ProfileResult& result);

}  // namespace spikeflow::pipeline
