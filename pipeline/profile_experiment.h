// The profile experiment behind `spikeflow profile`: latency stage by stage under a chosen load,
// against the floor the machine allows, measured in the same run.
// For each channel count, a synthetic session is written and played by the sender
// (`spikeflow send`) as a separate process over loopback UDP; the subscriber (`spikeflow listen`)
// runs as a separate process on the other side of ZeroMQ, exactly as on a rig. Per load point:
//   spikeflow   the pipeline under test in this process (sender -> UDP -> pipeline -> ZMQ -> sub)
//   floor       the same sender and subscriber processes with a bare relay in the middle
//               (pipeline/transport_floor.h): UDP one-way + forward + ZMQ one-way
//   in-process  the pipeline with publish off, predictions to a callback (pipeline/
//               embedded_pipeline.h): end to end without the ZeroMQ hop, against the UDP floor
//   hot loop    the same decoder stepping the same chunks back to back (caches hot), against the
//               live decode stage; and paced: one step per chunk width on one thread with the
//               pipeline's warm-up before each, nothing else running in this process: what a
//               step once per chunk costs on this machine (the decode stage's floor)
//   variants    the spikeflow run again with config overrides (`--variant NAME:key=value,...`)
// End to end is measured from the moment the sender handed the chunk-closing packet to the
// kernel (its send log) to the moment the subscriber process (or the callback) received the
// prediction (pipeline/listen_csv.h); all clocks are CLOCK_MONOTONIC. Blocking; runs on the
// caller's thread, one load point after the other, the runs of a load point one after another.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/latency_histogram.h"
#include "pipeline/pipeline_config.h"

namespace spikeflow::pipeline {

/// A named set of config overrides (`--variant NAME:key=value,key=value`): each key is a key of
/// the one key table (pipeline/config_keys.h), each value YAML text as the config file holds it.
struct ProfileVariant {
  std::string name;
  std::vector<std::pair<std::string, std::string>> overrides;
};

/// Parses "NAME:key=value,key=value" (commas inside [...] or quotes belong to the value: list
/// keys, CPU lists such as '0-1,3').
/// Throws ConfigError ("--variant SPEC: ...") for a missing name, key or '='.
ProfileVariant parse_profile_variant(const std::string& spec);

/// base with the overrides applied through the key table, so that a bad key or value gets the
/// key's own error (range, choices, unknown key, cross-key rules): a ConfigError naming source.
PipelineConfig apply_config_overrides(const PipelineConfig& base,
                                      const std::vector<std::pair<std::string, std::string>>& overrides,
                                      const std::string& source);

struct ProfileOptions {
  std::string
      executable;       ///< the spikeflow binary whose `send` and `listen` run as child processes
  std::string workdir;  ///< sessions, models, logs and CSVs; empty: a temp dir, removed at the end
  std::vector<int> channels{96, 256, 1024};  ///< load points: channel (unit) counts
  double rate_hz = 15.0;                     ///< mean firing rate per channel
  double duration_s = 10.0;                  ///< seconds of real-time traffic per run
  /// The config every run starts from (`-c`, else the defaults). The harness then sets what the
  /// experiment needs: ingest native/udp on 127.0.0.1 port 0, the publish endpoint (transport),
  /// metrics off, and record.path with `record`; variants apply on top of that.
  PipelineConfig base;
  /// Decoder to profile where its unit count matches; else an untrained one of the right size.
  /// Empty: base.decoder.checkpoint.
  std::string checkpoint;
  std::string decoder_path;  ///< auto | fast | torch; empty: base.decoder.path
  int threads = 0;           ///< decoder threads; 0: base.decoder.threads
  std::string transport = "tcp";  ///< publisher -> subscriber: tcp (loopback) | ipc (unix socket)
  bool record = false;            ///< the recorder tap on (its cost on latency)
  bool floor = true;              ///< measure the bare transport
  bool in_process = true;         ///< measure the in-process consumer
  bool hot_loop = true;           ///< measure the decoder in a hot loop
  std::vector<ProfileVariant> variants;
};

/// One real-time run of a load point (spikeflow, a variant, the floor or the in-process run).
/// Latencies in ns. The floor fills send_to_arrival (UDP one-way), pipeline (the relay's
/// forward), deliver (ZMQ one-way) and e2e; in-process has no deliver (callback time = e2e end).
struct ProfileRun {
  std::string label;          ///< "spikeflow", "floor", "in-process", a variant's name
  std::string overrides;      ///< a variant's "key=value, ..."; else empty
  uint64_t chunks = 0;        ///< predictions made (the floor: messages forwarded)
  uint64_t received = 0;      ///< by the subscriber / the callback
  uint64_t deadline_closed = 0;  ///< closed by the clock or at the end: no sender moment
  uint64_t warmups = 0;          ///< decoder warm-ups (decoder.warmup_margin_us)
  uint64_t spins = 0, spin_caught = 0;  ///< decoder.spin_us: polls, and chunks they caught
  core::LatencyHistogram send_to_arrival, close, queue, decode, publish, pipeline, deliver, e2e;
};

/// What one load point measured.
struct LoadPoint {
  int channels = 0;
  double events_per_s = 0;
  std::string decoder;  ///< the decoder's describe()
  ProfileRun spikeflow;
  bool has_floor = false, has_in_process = false, has_hot_loop = false;
  ProfileRun floor, in_process;
  std::vector<ProfileRun> variants;  ///< in ProfileOptions::variants order
  core::LatencyHistogram hot_decode;  ///< step() per chunk, back to back, ns
  core::LatencyHistogram paced_decode;  ///< step() once per chunk width, warm-up before, ns
};

struct ProfileResult {
  std::string header;  ///< build, CPU, threads and load settings: one line
  std::vector<LoadPoint> points;
  std::string text;  ///< header and every load point's tables, as printed
};

/// Runs every load point. on_text gets the header, then each load point's tables as soon as it
/// is measured (progress for a run of minutes). Throws std::runtime_error when a child process
/// cannot start or exits non-zero, or a file cannot be written or read; ConfigError for a
/// variant the key table refuses (before anything runs).
ProfileResult run_profile(const ProfileOptions& options,
                          const std::function<void(const std::string&)>& on_text);

}  // namespace spikeflow::pipeline
