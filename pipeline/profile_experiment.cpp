#include "pipeline/profile_experiment.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <thread>
#include <utility>

#include "core/chunk_flags.h"
#include "models/load_decoder.h"
#include "models/streaming_decoder.h"
#include "models/trainer.h"
#include "pipeline/listen_csv.h"
#include "pipeline/child_process.h"
#include "pipeline/live_pipeline.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/sender.h"
#include "replay/session_file.h"
#include "replay/synth_session.h"

namespace spikeflow::pipeline {

namespace {

namespace fs = std::filesystem;

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

std::string profile_header(const ProfileOptions& o) {
#ifdef NDEBUG
  const char* build = "Release";
#else
  const char* build = "Debug";
#endif
  return fmt::format(
      "build {} | cpu {} x{} | decoder threads {} | graph threads 2 | format native/udp | publish "
      "{} | record {} | "
      "{:.0f} Hz/channel, {:.0f} s per point\n",
      build, cpu_model(), std::thread::hardware_concurrency(), o.threads, o.transport,
      o.record ? "on" : "off", o.rate_hz, o.duration_s);
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

PipelineConfig load_point_config(const ProfileOptions& o, int channels, const fs::path& dir) {
  PipelineConfig cfg = parse_pipeline_config("", "profile");
  cfg.ingest.port = 0;
  cfg.publish.endpoint =
      o.transport == "ipc"
          ? fmt::format("ipc://{}", (dir / fmt::format("pub_{}.ipc", channels)).string())
          : "tcp://127.0.0.1:*";
  cfg.metrics.print_interval_s = 0;
  if (o.record) cfg.record.path = (dir / fmt::format("recording_{}.sfrec", channels)).string();
  return cfg;
}

/// The given checkpoint where its unit count matches the load, else an untrained model of the
/// right size: latency does not depend on the weights.
std::unique_ptr<models::StreamingDecoder> load_point_decoder(const ProfileOptions& o, int channels,
                                                             const replay::Session& session,
                                                             const PipelineConfig& cfg,
                                                             const fs::path& dir) {
  models::RuntimeOptions rt;
  rt.threads = o.threads;
  rt.path = o.decoder_path;
  std::unique_ptr<models::StreamingDecoder> dec;
  if (!o.checkpoint.empty()) {
    dec = models::load_decoder(o.checkpoint, rt);
    if (dec->units().size() != static_cast<size_t>(channels)) dec.reset();
  }
  if (!dec) {
    const auto ckpt = (dir / fmt::format("model_{}.ckpt", channels)).string();
    models::save_untrained_possm(ckpt, models::PossmConfig{}, session.units, 2,
                                 cfg.chunking.width_ns);
    dec = models::load_decoder(ckpt, rt);
  }
  return dec;
}

/// Files of one load point in the work dir.
struct LoadPointFiles {
  std::string session, send_log, listen_csv, listen_out, send_out;
  LoadPointFiles(const fs::path& dir, int channels)
      : session((dir / fmt::format("session_{}.sfs", channels)).string()),
        send_log((dir / fmt::format("send_{}.log", channels)).string()),
        listen_csv((dir / fmt::format("listen_{}.csv", channels)).string()),
        listen_out((dir / fmt::format("listen_{}.log", channels)).string()),
        send_out((dir / fmt::format("send_{}.out", channels)).string()) {}
};

/// The subscriber process first (it joins before data flows), then the sender process at real
/// time; the pipeline drains once the sender is done and the subscriber goes idle.
void run_sender_and_listener(const ProfileOptions& o, LivePipeline& live, const LoadPointFiles& f) {
  const std::string& exe = o.executable;
  const pid_t listener = spawn_logged({exe, "listen", "-e", live.publish_endpoint(), "-o",
                                       f.listen_csv, "--idle-timeout-s", "1.5", "-q"},
                                      f.listen_out, "profile");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the SUB joins before data flows
  const pid_t sender =
      spawn_logged({exe, "send", "-s", f.session, "--port", std::to_string(live.ingest_port()),
                    "-q", "--send-log", f.send_log},
                   f.send_out, "profile");
  const int send_rc = wait_child(sender);
  live.stop();
  const int listen_rc = wait_child(listener);
  if (send_rc != 0 || listen_rc != 0) {
    throw std::runtime_error(
        fmt::format("profile: sender exited {} / listener exited {}", send_rc, listen_rc));
  }
}

/// Joins the send log with what the subscriber received: end to end runs from the packet that
/// closed the chunk, the first whose device time reached end + lateness.
void time_received_predictions(LoadPoint& lp, const LoadPointFiles& f, int64_t lateness_ns) {
  const auto sent = read_send_log(f.send_log);
  for (const auto& r : read_listen_csv(f.listen_csv)) {
    const auto& p = r.prediction;
    ++lp.received;
    lp.deliver.record(r.receive_ns - p.timing.publish_ns);
    if (core::has_flag(p.flags, core::ChunkFlag::kClosedByDeadline) ||
        core::has_flag(p.flags, core::ChunkFlag::kEndOfStream)) {
      ++lp.deadline_closed;  // closed by the clock, not by a packet: no sender moment to measure
                             // from
      continue;
    }
    const int64_t need = p.end_ns + lateness_ns;
    auto it = std::lower_bound(sent.begin(), sent.end(), std::make_pair(need, INT64_MIN));
    if (it == sent.end()) continue;
    lp.e2e.record(r.receive_ns - it->second);
    lp.send_to_arrival.record(p.timing.trigger_arrival_ns - it->second);
  }
}

LoadPoint run_load_point(const ProfileOptions& o, int channels, const fs::path& dir) {
  LoadPoint lp;
  lp.channels = channels;
  const LoadPointFiles files(dir, channels);
  const auto session = make_load_session(o, channels);
  lp.events_per_s = static_cast<double>(session.num_spikes()) / o.duration_s;
  replay::write_session_file(session, files.session);

  const PipelineConfig cfg = load_point_config(o, channels, dir);
  auto dec = load_point_decoder(o, channels, session, cfg, dir);
  lp.decoder = dec->describe();
  LivePipeline live(cfg, std::move(dec));
  live.start();
  run_sender_and_listener(o, live, files);
  const auto st = live.stats();
  lp.chunks = st.predictions;
  lp.close = st.close_latency;
  lp.queue = st.queue_latency;
  lp.decode = st.decode_latency;
  lp.publish = st.publish_latency;
  time_received_predictions(lp, files, cfg.chunking.lateness_ns);
  return lp;
}

std::string row(const char* name, const core::LatencyHistogram& h) {
  return fmt::format("  {:<22} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f}\n", name,
                     h.percentile(0.5) / 1e3, h.percentile(0.9) / 1e3, h.percentile(0.99) / 1e3,
                     h.percentile(0.999) / 1e3, h.max() / 1e3);
}

std::string load_point_table(const LoadPoint& p) {
  std::string t = fmt::format(
      "{} channels, {:.0f} events/s, decoder {}: {} chunks, {} received, {} closed by deadline/at "
      "end\n",
      p.channels, p.events_per_s, p.decoder, p.chunks, p.received, p.deadline_closed);
  t += fmt::format("  {:<22} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "stage (us)", "p50", "p90", "p99",
                   "p99.9", "max");
  t += row("send -> arrival", p.send_to_arrival) + row("arrival -> close", p.close) +
       row("queue", p.queue) + row("decode", p.decode) + row("publish", p.publish) +
       row("publish -> subscriber", p.deliver) + row("END TO END", p.e2e);
  return t;
}

/// End to end against load: p50 and p99 against channel count.
void write_latency_vs_load_svg(std::ofstream& o, const std::vector<LoadPoint>& points) {
  double ymax = 1;
  for (const auto& p : points) ymax = std::max(ymax, p.e2e.percentile(0.99) / 1e3);
  ymax *= 1.2;
  const int W = 560, H = 300, L = 60, B = 40;
  o << "<h2>End-to-end latency vs load</h2><svg width=" << W << " height=" << H
    << " xmlns='http://www.w3.org/2000/svg'>";
  o << "<line x1=" << L << " y1=" << H - B << " x2=" << W - 10 << " y2=" << H - B
    << " stroke=black />";
  o << "<line x1=" << L << " y1=10 x2=" << L << " y2=" << H - B << " stroke=black />";
  for (int t = 0; t <= 4; ++t) {
    const double v = ymax * t / 4;
    const double y = H - B - (H - B - 10) * t / 4.0;
    o << fmt::format("<text x=5 y={:.0f} font-size=11>{:.0f} us</text>", y + 4, v);
  }
  const char* colors[] = {"#1f77b4", "#d62728"};
  const double qs[] = {0.5, 0.99};
  for (int k = 0; k < 2; ++k) {
    std::string pts;
    for (size_t i = 0; i < points.size(); ++i) {
      const double x =
          L + 30 + (W - L - 60) * (points.size() > 1 ? double(i) / (points.size() - 1) : 0.5);
      const double y = H - B - (H - B - 10) * (points[i].e2e.percentile(qs[k]) / 1e3) / ymax;
      pts += fmt::format("{:.1f},{:.1f} ", x, y);
      o << fmt::format("<circle cx={:.1f} cy={:.1f} r=3 fill='{}' />", x, y, colors[k]);
      if (k == 0)
        o << fmt::format("<text x={:.1f} y={} font-size=11 text-anchor=middle>{} ch</text>", x,
                         H - B + 16, points[i].channels);
    }
    o << "<polyline fill=none stroke='" << colors[k] << "' points='" << pts << "' />";
  }
  o << "<text x=" << W - 150 << " y=20 font-size=12 fill='#1f77b4'>p50</text><text x=" << W - 110
    << " y=20 font-size=12 fill='#d62728'>p99</text></svg>";
}

void write_stage_table(std::ofstream& o, const LoadPoint& p) {
  o << fmt::format(
      "<h2>{} channels, {:.0f} events/s</h2><p>decoder: {}; chunks {}; received {}; closed by "
      "deadline "
      "or at end {}</p>",
      p.channels, p.events_per_s, p.decoder, p.chunks, p.received, p.deadline_closed);
  o << "<table><tr><th>stage "
       "(us)</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>";
  const std::pair<const char*, const core::LatencyHistogram*> rows[] = {
      {"send -> arrival", &p.send_to_arrival},
      {"arrival -> close", &p.close},
      {"queue", &p.queue},
      {"decode", &p.decode},
      {"publish", &p.publish},
      {"publish -> subscriber", &p.deliver},
      {"end to end", &p.e2e}};
  for (const auto& [name, h] : rows) {
    o << fmt::format(
        "<tr><td "
        "style=text-align:left>{}</td><td>{:.1f}</td><td>{:.1f}</td><td>{:.1f}</td><td>{:.1f}</"
        "td><td>{:.1f}</td></tr>",
        name, h->percentile(0.5) / 1e3, h->percentile(0.9) / 1e3, h->percentile(0.99) / 1e3,
        h->percentile(0.999) / 1e3, h->max() / 1e3);
  }
  o << "</table>";
}

/// Histogram of end to end, log-spaced bins from 10 us to 100 ms, re-bucketed from the latency
/// histogram by sampling its CDF at the bin edges.
void write_e2e_histogram_svg(std::ofstream& o, const core::LatencyHistogram& e2e) {
  const int nb = 40;
  auto cdf = [&](double us) {
    if (e2e.count() == 0) return 0.0;
    double lo = 0, hi = 1;
    for (int it = 0; it < 30; ++it) {
      const double mid = (lo + hi) / 2;
      (e2e.percentile(mid) / 1e3 <= us ? lo : hi) = mid;
    }
    return lo;
  };
  double prev = 0, maxc = 1e-9;
  std::vector<double> frac(nb);
  for (int b = 0; b < nb; ++b) {
    const double edge = 10.0 * std::pow(10.0, 4.0 * (b + 1) / nb);
    const double c = cdf(edge);
    frac[b] = std::max(0.0, c - prev);
    prev = c;
    maxc = std::max(maxc, frac[b]);
  }
  o << "<svg width=560 height=160 xmlns='http://www.w3.org/2000/svg'>";
  for (int b = 0; b < nb; ++b) {
    const double h = 120 * frac[b] / maxc;
    o << fmt::format("<rect x={} y={:.1f} width=12 height={:.1f} fill='#1f77b4' />", 20 + b * 13,
                     130 - h, h);
  }
  o << "<text x=20 y=150 font-size=11>10 us</text><text x=270 y=150 font-size=11>1 ms</text>"
       "<text x=500 y=150 font-size=11>100 ms</text></svg>";
}

}  // namespace

ProfileResult run_profile(const ProfileOptions& o,
                          const std::function<void(const std::string&)>& on_text) {
  const fs::path dir = o.workdir.empty() ? fs::temp_directory_path() /
                                               fmt::format("spikeflow_profile_{}", ::getpid())
                                         : fs::path(o.workdir);
  fs::create_directories(dir);
  ProfileResult r;
  r.header = profile_header(o);
  r.text = r.header;
  if (on_text) on_text(r.header);
  for (int channels : o.channels) {
    r.points.push_back(run_load_point(o, channels, dir));
    const std::string t = load_point_table(r.points.back());
    if (on_text) on_text(t);
    r.text += t;
  }
  if (o.workdir.empty()) fs::remove_all(dir);
  return r;
}

void write_profile_report(const std::string& path, const ProfileResult& result) {
  std::ofstream o(path);
  if (!o) throw std::runtime_error(path + ": cannot write the report");
  o << "<!doctype html><html><head><meta charset=utf-8><title>spikeflow profile</title><style>"
       "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px "
       "solid #ccc;"
       "padding:2px 8px;text-align:right}pre{background:#f6f6f6;padding:8px}</style></head><body>"
       "<h1>spikeflow latency profile</h1><pre>"
    << result.text << "</pre>";
  write_latency_vs_load_svg(o, result.points);
  for (const auto& p : result.points) {
    write_stage_table(o, p);
    write_e2e_histogram_svg(o, p.e2e);
  }
  o << "</body></html>\n";
}

}  // namespace spikeflow::pipeline
