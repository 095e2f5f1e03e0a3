#include "pipeline/profile_experiment.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include <yaml-cpp/yaml.h>

#include "core/chunk_flags.h"
#include "core/time.h"
#include "models/load_decoder.h"
#include "models/streaming_decoder.h"
#include "models/trainer.h"
#include "pipeline/child_process.h"
#include "pipeline/decoder_thread.h"
#include "pipeline/embedded_pipeline.h"
#include "pipeline/listen_csv.h"
#include "pipeline/live_pipeline.h"
#include "pipeline/profile_report.h"
#include "pipeline/sender.h"
#include "pipeline/transport_floor.h"
#include "replay/dataset.h"
#include "replay/session_file.h"
#include "replay/synth_session.h"

namespace spikeflow::pipeline {

namespace {

namespace fs = std::filesystem;

/// Splits at commas outside [...] / {...} and quotes, so a list value ([1, 2]) or a quoted CPU
/// list ('0-1,3') stays whole.
std::vector<std::string> split_top_level(const std::string& s) {
  std::vector<std::string> out(1);
  int depth = 0;
  char quote = 0;
  for (char c : s) {
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      --depth;
    }
    if (c == ',' && depth == 0 && quote == 0) {
      out.emplace_back();
      continue;
    }
    out.back() += c;
  }
  return out;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

}  // namespace

ProfileVariant parse_profile_variant(const std::string& spec) {
  const std::string source = "--variant " + spec;
  const auto colon = spec.find(':');
  if (colon == std::string::npos || trim(spec.substr(0, colon)).empty())
    throw ConfigError(source, {"expected NAME:key=value[,key=value...]"});
  ProfileVariant v;
  v.name = trim(spec.substr(0, colon));
  for (const auto& item : split_top_level(spec.substr(colon + 1))) {
    const auto eq = item.find('=');
    if (eq == std::string::npos || trim(item.substr(0, eq)).empty())
      throw ConfigError(source, {"'" + item + "' is not key=value"});
    v.overrides.emplace_back(trim(item.substr(0, eq)), trim(item.substr(eq + 1)));
  }
  return v;
}

PipelineConfig apply_config_overrides(
    const PipelineConfig& base, const std::vector<std::pair<std::string, std::string>>& overrides,
    const std::string& source) {
  // Through YAML and the key table's reader, so that every key, present and future, and every
  // rule is checked exactly as in a config file.
  YAML::Node root = YAML::Load(to_yaml(base));
  try {
    for (const auto& [key, value] : overrides) {
      std::vector<std::string> parts;
      std::stringstream ss(key);
      for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
      std::vector<YAML::Node> path{root};
      for (size_t i = 0; i + 1 < parts.size(); ++i) {
        if (!path.back().IsMap() && !path.back().IsNull())
          throw ConfigError(source, {key + ": unknown key"});
        path.push_back(path.back()[parts[i]]);
      }
      if (!path.back().IsMap() && !path.back().IsNull())
        throw ConfigError(source, {key + ": unknown key"});
      path.back()[parts.back()] = value.empty() ? YAML::Node(std::string()) : YAML::Load(value);
    }
  } catch (const YAML::Exception& e) {
    throw ConfigError(source, {std::string("YAML syntax error: ") + e.what()});
  }
  YAML::Emitter y;
  y << root;
  return parse_pipeline_config(std::string(y.c_str()) + "\n", source);
}

namespace {

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

/// The config of a load point's spikeflow run: the base, then what the harness needs.
PipelineConfig harness_config(const ProfileOptions& o, int channels, const fs::path& dir) {
  PipelineConfig cfg = o.base;
  cfg.ingest.format = IngestFormat::kNative;  // what the sender speaks
  cfg.ingest.transport = Transport::kUdp;
  cfg.ingest.address = "127.0.0.1";
  cfg.ingest.port = 0;
  cfg.ingest.connect.clear();
  cfg.publish.enabled = true;
  cfg.publish.endpoint =
      o.transport == "ipc"
          ? fmt::format("ipc://{}", (dir / fmt::format("pub_{}.ipc", channels)).string())
          : "tcp://127.0.0.1:*";
  cfg.metrics.print_interval_s = 0;
  if (o.record) cfg.record.path = (dir / fmt::format("recording_{}.sfrec", channels)).string();
  if (o.threads > 0) cfg.decoder.threads = o.threads;
  if (!o.decoder_path.empty()) {
    const auto p = parse_enum<DecoderPath>(o.decoder_path);
    if (!p) throw ConfigError("--decoder-path", {"must be " + enum_choices<DecoderPath>()});
    cfg.decoder.path = *p;
  }
  return cfg;
}

PipelineConfig variant_config(const ProfileOptions& o, const ProfileVariant& v, int channels,
                              const fs::path& dir) {
  return apply_config_overrides(harness_config(o, channels, dir), v.overrides,
                                "--variant " + v.name);
}

std::string profile_header(const ProfileOptions& o, const PipelineConfig& cfg) {
#ifdef NDEBUG
  const char* build = "Release";
#else
  const char* build = "Debug";
#endif
  return fmt::format(
      "build {} | cpu {} x{} | decoder threads {} | graph threads {} | format native/udp | "
      "publish {} | record {} | {:.0f} Hz/channel, {:.0f} s per run | floor {} | in-process {} "
      "| hot loop {} | variants {}\n",
      build, cpu_model(), std::thread::hardware_concurrency(), cfg.decoder.threads,
      cfg.graph_threads, o.transport, o.record ? "on" : "off", o.rate_hz, o.duration_s,
      o.floor ? "on" : "off", o.in_process ? "on" : "off", o.hot_loop ? "on" : "off",
      o.variants.size());
}

/// The load: a synthetic session of `channels` units at about rate_hz each, seeded by the count.
replay::Session make_load_session(const ProfileOptions& o, int channels) {
  replay::SynthOptions so;
  so.num_units = channels;
  so.duration_s = o.duration_s;
  so.min_rate_hz = o.rate_hz * 0.5;
  so.max_rate_hz = o.rate_hz * 1.5;
  so.seed = static_cast<uint64_t>(channels);
  return replay::synthesize_session(so);
}

/// The given checkpoint where its unit count matches the load, else an untrained model of the
/// right size (written once per load point): latency does not depend on the weights.
std::unique_ptr<models::StreamingDecoder> load_point_decoder(const ProfileOptions& o, int channels,
                                                             const replay::Session& session,
                                                             const PipelineConfig& cfg,
                                                             const fs::path& dir) {
  const models::RuntimeOptions rt = runtime_options(cfg.decoder);
  const std::string& given = !o.checkpoint.empty() ? o.checkpoint : cfg.decoder.checkpoint;
  std::unique_ptr<models::StreamingDecoder> dec;
  if (!given.empty()) {
    dec = models::load_decoder(given, rt);
    if (dec->units().size() != static_cast<size_t>(channels)) dec.reset();
  }
  if (!dec) {
    const auto ckpt = (dir / fmt::format("model_{}.ckpt", channels)).string();
    if (!fs::exists(ckpt))
      models::save_untrained_possm(ckpt, models::PossmConfig{}, session.units, 2,
                                   cfg.chunking.width_ns);
    dec = models::load_decoder(ckpt, rt);
  }
  return dec;
}

/// Files of one run of a load point in the work dir; the session is shared by the runs.
struct RunFiles {
  std::string session, send_log, listen_csv, listen_out, send_out;
  RunFiles(const fs::path& dir, int channels, const std::string& tag)
      : session((dir / fmt::format("session_{}.sfs", channels)).string()),
        send_log((dir / fmt::format("send_{}_{}.log", tag, channels)).string()),
        listen_csv((dir / fmt::format("listen_{}_{}.csv", tag, channels)).string()),
        listen_out((dir / fmt::format("listen_{}_{}.log", tag, channels)).string()),
        send_out((dir / fmt::format("send_{}_{}.out", tag, channels)).string()) {}
};

/// The subscriber process first (it joins before data flows; none for the in-process run), then
/// the sender process at real time; stop_middle drains the middle once the sender is done, and
/// the subscriber exits when it goes idle. wait_subscribed(timeout) waits until the middle's PUB
/// socket counts a subscriber (pipeline/subscriber_monitor.h); whether it does.
///
/// Why "handshake done" is enough: the listener's SUBSCRIBE is the next frame on its connection,
/// at most one loopback hop after the publisher's handshake event, and the publisher applies it
/// on its next send. The first message cannot be published sooner than one chunk width plus the
/// lateness (50 + 2 ms by default) of device time after the sender's first packet, and the sender
/// is only spawned (fork + exec + reading the session) after this wait returns: the hop is
/// microseconds, the margin tens of milliseconds even before the spawn.
void run_children(const ProfileOptions& o, const std::string& endpoint, const std::string& topic,
                  uint16_t port,
                  const std::function<bool(std::chrono::milliseconds)>& wait_subscribed,
                  const std::function<void()>& stop_middle, const RunFiles& f) {
  const std::string& exe = o.executable;
  pid_t listener = -1;
  if (!endpoint.empty()) {
    fs::remove(f.listen_csv);  // a reused workdir: the wait below must see this run's file
    listener = spawn_logged({exe, "listen", "-e", endpoint, "--topic", topic, "-o", f.listen_csv,
                             "--idle-timeout-s", "1.5", "-q"},
                            f.listen_out, "profile");
    // The SUB joins before data flows: a late joiner would lose the first chunks. Starting the
    // binary can take seconds on a loaded machine, so wait for its CSV (created right after
    // connect()), then for the middle to count it as a subscriber; both within one deadline.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    const auto throw_if_listener_exited = [&] {
      int status = 0;
      if (waitpid(listener, &status, WNOHANG) == listener)
        throw std::runtime_error("profile: the listener exited at start (log: " + f.listen_out + ")");
    };
    const auto check_deadline = [&](const char* what) {
      if (std::chrono::steady_clock::now() > deadline)
        throw std::runtime_error(
            fmt::format("profile: the listener did not {} in 60 s (log: {})", what, f.listen_out));
    };
    std::error_code ec;
    while (!fs::exists(f.listen_csv, ec)) {
      throw_if_listener_exited();
      check_deadline("start");
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    // Blocks on the monitor's condition variable; wakes every 100 ms only to see whether the
    // listener died meanwhile.
    while (!wait_subscribed(std::chrono::milliseconds(100))) {
      throw_if_listener_exited();
      check_deadline("subscribe");
    }
  }
  const pid_t sender = spawn_logged({exe, "send", "-s", f.session, "--port", std::to_string(port),
                                     "-q", "--send-log", f.send_log},
                                    f.send_out, "profile");
  const int send_rc = wait_child(sender);
  stop_middle();
  const int listen_rc = listener > 0 ? wait_child(listener) : 0;
  if (send_rc != 0 || listen_rc != 0) {
    throw std::runtime_error(fmt::format("profile: sender exited {} / listener exited {} (logs: {}, {})",
                                         send_rc, listen_rc, f.send_out, f.listen_out));
  }
}

/// Joins the send log with what arrived: end to end runs from the packet that closed the chunk,
/// the first whose device time reached end + lateness. with_deliver: receive_ns is a subscriber
/// process's (publish -> subscriber is the ZeroMQ hop); else a callback's.
void time_predictions(ProfileRun& run, const std::vector<ReceivedPrediction>& got,
                      const std::string& send_log, int64_t lateness_ns, bool with_deliver) {
  const auto sent = read_send_log(send_log);
  for (const auto& r : got) {
    const auto& p = r.prediction;
    ++run.received;
    if (with_deliver) run.deliver.record(r.receive_ns - p.timing.publish_ns);
    if (core::has_flag(p.flags, core::ChunkFlag::kClosedByDeadline) ||
        core::has_flag(p.flags, core::ChunkFlag::kEndOfStream)) {
      ++run.deadline_closed;  // closed by the clock, not by a packet: no sender moment
      continue;
    }
    const int64_t need = p.end_ns + lateness_ns;
    auto it = std::lower_bound(sent.begin(), sent.end(), std::make_pair(need, INT64_MIN));
    if (it == sent.end()) continue;
    run.e2e.record(r.receive_ns - it->second);
    run.send_to_arrival.record(p.timing.trigger_arrival_ns - it->second);
    run.pipeline.record(p.timing.publish_ns - p.timing.trigger_arrival_ns);
  }
}

void take_stage_stats(ProfileRun& run, const PipelineStats& st) {
  run.chunks = st.predictions;
  run.close = st.close_latency;
  run.queue = st.queue_latency;
  run.decode = st.decode_latency;
  run.publish = st.publish_latency;
  run.warmups = st.decode.warmups;
  run.spins = st.decoder_spins;
  run.spin_caught = st.decoder_spin_caught;
}

/// sender -> UDP -> the pipeline in this process -> ZMQ -> subscriber.
ProfileRun run_spikeflow(const ProfileOptions& o, int channels, const replay::Session& session,
                         const PipelineConfig& cfg, const fs::path& dir, const std::string& tag) {
  ProfileRun run;
  const RunFiles files(dir, channels, tag);
  LivePipeline live(cfg, load_point_decoder(o, channels, session, cfg, dir));
  live.start();
  run_children(
      o, live.publish_endpoint(), cfg.publish.topic, live.ingest_port(),
      [&](std::chrono::milliseconds t) { return live.wait_for_subscribers(1, t); },
      [&] { live.stop(); }, files);
  take_stage_stats(run, live.stats());
  time_predictions(run, read_listen_csv(files.listen_csv), files.send_log,
                   cfg.chunking.lateness_ns, true);
  return run;
}

/// The same sender and subscriber around the bare relay.
ProfileRun run_floor(const ProfileOptions& o, int channels, const PipelineConfig& cfg,
                     int output_dim, const fs::path& dir) {
  ProfileRun run;
  run.label = "floor";
  const RunFiles files(dir, channels, "floor");
  FloorRelayOptions fo;
  fo.endpoint = cfg.publish.endpoint.rfind("ipc://", 0) == 0
                    ? fmt::format("ipc://{}", (dir / fmt::format("floor_{}.ipc", channels)).string())
                    : "tcp://127.0.0.1:*";
  fo.topic = cfg.publish.topic;
  fo.width_ns = cfg.chunking.width_ns;
  fo.lateness_ns = cfg.chunking.lateness_ns;
  fo.output_dim = output_dim;
  fo.receive_buffer_bytes = cfg.ingest.receive_buffer_bytes;
  fo.send_high_water_mark = cfg.publish.send_high_water_mark;
  fo.linger_ms = cfg.publish.linger_ms;
  TransportFloorRelay relay(fo);
  relay.start();
  run_children(
      o, relay.endpoint(), fo.topic, relay.port(),
      [&](std::chrono::milliseconds t) { return relay.wait_for_subscribers(1, t); },
      [&] { relay.stop(); }, files);
  run.chunks = relay.stats().forwarded;
  time_predictions(run, read_listen_csv(files.listen_csv), files.send_log, fo.lateness_ns, true);
  return run;
}

/// sender -> UDP -> the pipeline in this process -> a callback (publish off).
ProfileRun run_in_process(const ProfileOptions& o, int channels, const replay::Session& session,
                          const PipelineConfig& cfg, const fs::path& dir) {
  ProfileRun run;
  run.label = "in-process";
  const RunFiles files(dir, channels, "inproc");
  std::vector<ReceivedPrediction> got;
  got.reserve(static_cast<size_t>(o.duration_s * 1e9 / static_cast<double>(cfg.chunking.width_ns)) +
              1000);  // no allocation in the callback
  EmbeddedPipeline ep(cfg, load_point_decoder(o, channels, session, cfg, dir),
                      [&got](const core::Prediction& p) {
                        got.push_back({p, core::host_now_ns()});
                      });
  ep.start();
  run_children(
      o, "", "", ep.ingest_port(), {}, [&] { ep.stop(); }, files);
  take_stage_stats(run, ep.stats());
  time_predictions(run, got, files.send_log, cfg.chunking.lateness_ns, false);
  return run;
}

/// The hot loop: the same decoder stepping the load's chunks back to back, one untimed pass to
/// warm the caches, then one timed pass, each step() timed and prepare_next() untimed as live.
/// Then the paced loop: up to kPacedChunks chunks, one per chunk width on this thread, each
/// warmed decoder.warmup_margin_us before (as the decoder thread does), step() timed.
void run_decode_loops(const ProfileOptions& o, int channels, const replay::Session& session,
                      const PipelineConfig& cfg, const fs::path& dir, LoadPoint& lp) {
  auto dec = load_point_decoder(o, channels, session, cfg, dir);
  replay::DatasetOptions dopt;
  dopt.width_ns = dec->chunk_width_ns();
  dopt.unit_order = dec->units();
  const auto ds = replay::build_dataset(session, dopt);
  std::vector<float> out(static_cast<size_t>(dec->output_dim()));
  for (int pass = 0; pass < 2; ++pass) {
    dec->reset();
    for (const auto& c : ds.chunks) {
      const int64_t t0 = core::host_now_ns();
      dec->step(c, out);
      const int64_t t1 = core::host_now_ns();
      dec->prepare_next();
      if (pass == 1) lp.hot_decode.record(t1 - t0);
    }
  }
  constexpr size_t kPacedChunks = 200;
  const int64_t width = dec->chunk_width_ns();
  const int64_t margin = decoder_thread_options(cfg).warm_margin_ns;
  using Clock = std::chrono::steady_clock;  // core::host_now_ns's clock
  const auto at = [](int64_t ns) { return Clock::time_point(std::chrono::nanoseconds(ns)); };
  dec->reset();
  int64_t due = core::host_now_ns() + width;
  for (size_t k = 0; k < std::min(kPacedChunks, ds.chunks.size()); ++k, due += width) {
    if (margin > 0) {
      std::this_thread::sleep_until(at(due - margin));
      dec->warm();
    }
    std::this_thread::sleep_until(at(due));
    const int64_t t0 = core::host_now_ns();
    dec->step(ds.chunks[k], out);
    const int64_t t1 = core::host_now_ns();
    dec->prepare_next();
    lp.paced_decode.record(t1 - t0);
  }
}

LoadPoint run_load_point(const ProfileOptions& o, int channels, const fs::path& dir) {
  LoadPoint lp;
  lp.channels = channels;
  const auto session = make_load_session(o, channels);
  lp.events_per_s = static_cast<double>(session.num_spikes()) / o.duration_s;
  replay::write_session_file(session, RunFiles(dir, channels, "").session);

  const PipelineConfig cfg = harness_config(o, channels, dir);
  const auto probe = load_point_decoder(o, channels, session, cfg, dir);
  lp.decoder = probe->describe();
  const int output_dim = probe->output_dim();
  // The floor first: it is the reference the others are read against.
  if (o.floor) {
    lp.floor = run_floor(o, channels, cfg, output_dim, dir);
    lp.has_floor = true;
  }
  lp.spikeflow = run_spikeflow(o, channels, session, cfg, dir, "spikeflow");
  lp.spikeflow.label = "spikeflow";
  if (o.in_process) {
    lp.in_process = run_in_process(o, channels, session, cfg, dir);
    lp.has_in_process = true;
  }
  for (const auto& v : o.variants) {
    ProfileRun r = run_spikeflow(o, channels, session, variant_config(o, v, channels, dir), dir,
                                 "variant_" + std::to_string(lp.variants.size()));
    r.label = v.name;
    for (const auto& [k, val] : v.overrides)
      r.overrides += (r.overrides.empty() ? "" : ", ") + k + "=" + val;
    lp.variants.push_back(std::move(r));
  }
  if (o.hot_loop) {
    run_decode_loops(o, channels, session, cfg, dir, lp);
    lp.has_hot_loop = true;
  }
  return lp;
}

}  // namespace

ProfileResult run_profile(const ProfileOptions& o,
                          const std::function<void(const std::string&)>& on_text) {
  const fs::path dir = o.workdir.empty() ? fs::temp_directory_path() /
                                               fmt::format("spikeflow_profile_{}", ::getpid())
                                         : fs::path(o.workdir);
  // Every variant is checked before anything runs: a typo costs no minutes.
  const PipelineConfig first = harness_config(o, o.channels.empty() ? 1 : o.channels[0], dir);
  for (const auto& v : o.variants) (void)apply_config_overrides(first, v.overrides, "--variant " + v.name);
  fs::create_directories(dir);
  ProfileResult r;
  r.header = profile_header(o, first);
  r.text = r.header;
  if (on_text) on_text(r.header);
  for (int channels : o.channels) {
    r.points.push_back(run_load_point(o, channels, dir));
    const std::string t = load_point_text(r.points.back());
    if (on_text) on_text(t);
    r.text += t;
  }
  if (o.workdir.empty()) fs::remove_all(dir);
  return r;
}

}  // namespace spikeflow::pipeline
