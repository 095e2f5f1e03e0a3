// spikeflow profile: latency stage by stage under a chosen load. The pipeline under test runs in
// this process; the sender (`spikeflow send`) and the subscriber (`spikeflow listen`) run as
// separate processes on loopback, exactly as on a rig. End to end is measured from the moment
// the sender handed the chunk-closing packet to the kernel (its send log) to the moment the
// subscriber process received the prediction (its CSV); both use CLOCK_MONOTONIC.
#include <fmt/format.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "cli/commands.h"
#include "cli/listen_csv.h"
#include "core/chunk_flags.h"
#include "core/latency_histogram.h"
#include "core/time.h"
#include "models/load_decoder.h"
#include "models/streaming_decoder.h"
#include "models/trainer.h"
#include "pipeline/live_pipeline.h"
#include "replay/session_file.h"
#include "replay/synth_session.h"

extern char** environ;

namespace spikeflow::cli {

namespace {

struct ProfileArgs {
  std::vector<int> channels{96, 256, 1024};
  double rate_hz = 15.0;
  double duration_s = 10.0;
  std::string checkpoint;
  std::string decoder_path = "auto";
  std::string report;
  std::string workdir;
  int threads = 1;
  std::string transport = "tcp";  // publisher -> subscriber: tcp (loopback) or ipc (unix socket)
  bool record = false;            // the recorder tap on (its cost on latency)
};

struct LoadPoint {
  int channels = 0;
  double events_per_s = 0;
  uint64_t chunks = 0, received = 0, deadline_closed = 0;
  core::LatencyHistogram send_to_arrival, close, queue, decode, publish, deliver, e2e;
  std::string decoder;
};

/// Starts a child process with stdout and stderr going to log_path.
pid_t spawn(const std::vector<std::string>& args, const std::string& log_path) {
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
  if (rc != 0) throw std::runtime_error("profile: cannot start " + args[0]);
  return pid;
}

int wait_child(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string self_exe() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

LoadPoint run_point(const ProfileArgs& a, int channels, const std::filesystem::path& dir) {
  LoadPoint lp;
  lp.channels = channels;
  replay::SynthOptions so;
  so.num_units = channels;
  so.duration_s = a.duration_s;
  so.min_rate_hz = a.rate_hz * 0.5;
  so.max_rate_hz = a.rate_hz * 1.5;
  so.seed = static_cast<uint64_t>(channels);
  const auto session = replay::synthesize_session(so);
  lp.events_per_s = static_cast<double>(session.num_spikes()) / a.duration_s;
  const auto session_path = (dir / fmt::format("session_{}.sfs", channels)).string();
  replay::write_session_file(session, session_path);

  pipeline::PipelineConfig cfg = pipeline::parse_pipeline_config("", "profile");
  cfg.ingest.port = 0;
  cfg.publish.endpoint = a.transport == "ipc" ? fmt::format("ipc://{}", (dir / fmt::format("pub_{}.ipc", channels)).string())
                                               : "tcp://127.0.0.1:*";
  cfg.metrics.print_interval_s = 0;
  if (a.record) cfg.record.path = (dir / fmt::format("recording_{}.sfrec", channels)).string();
  models::RuntimeOptions rt;
  rt.threads = a.threads;
  rt.path = a.decoder_path;
  std::unique_ptr<models::StreamingDecoder> dec;
  if (!a.checkpoint.empty()) {
    dec = models::load_decoder(a.checkpoint, rt);
    if (dec->units().size() != static_cast<size_t>(channels)) dec.reset();
  }
  if (!dec) {
    // Latency does not depend on the weights: an untrained model of the right size.
    const auto ckpt = (dir / fmt::format("model_{}.ckpt", channels)).string();
    models::save_untrained_possm(ckpt, models::PossmConfig{}, session.units, 2, cfg.chunking.width_ns);
    dec = models::load_decoder(ckpt, rt);
  }
  lp.decoder = dec->describe();
  pipeline::LivePipeline live(cfg, std::move(dec));
  live.start();

  const std::string exe = self_exe();
  const auto csv = (dir / fmt::format("listen_{}.csv", channels)).string();
  const auto log = (dir / fmt::format("send_{}.log", channels)).string();
  const pid_t listener = spawn({exe, "listen", "-e", live.publish_endpoint(), "-o", csv, "--idle-timeout-s", "1.5", "-q"},
                               (dir / fmt::format("listen_{}.log", channels)).string());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the SUB joins before data flows
  const pid_t sender = spawn({exe, "send", "-s", session_path, "--port", std::to_string(live.ingest_port()), "-q",
                              "--send-log", log},
                             (dir / fmt::format("send_{}.out", channels)).string());
  const int send_rc = wait_child(sender);
  live.stop();
  const int listen_rc = wait_child(listener);
  if (send_rc != 0 || listen_rc != 0) {
    throw std::runtime_error(fmt::format("profile: sender exited {} / listener exited {}", send_rc, listen_rc));
  }
  const auto st = live.stats();
  lp.chunks = st.predictions;
  lp.close = st.close_latency;
  lp.queue = st.queue_latency;
  lp.decode = st.decode_latency;
  lp.publish = st.publish_latency;

  // Join the send log (device time -> host send time) with what the subscriber received.
  std::vector<std::pair<int64_t, int64_t>> sent;
  {
    std::ifstream f(log, std::ios::binary);
    int64_t d, h;
    while (f.read(reinterpret_cast<char*>(&d), 8) && f.read(reinterpret_cast<char*>(&h), 8)) sent.emplace_back(d, h);
  }
  for (const auto& r : read_listen_csv(csv)) {
    const int64_t end_ns = r.prediction.end_ns;
    const uint32_t flags = r.prediction.flags;
    const int64_t trigger = r.prediction.timing.trigger_arrival_ns, published = r.prediction.timing.publish_ns,
                  received = r.receive_ns;
    ++lp.received;
    lp.deliver.record(received - published);
    if (core::has_flag(flags, core::ChunkFlag::kClosedByDeadline) || core::has_flag(flags, core::ChunkFlag::kEndOfStream)) {
      ++lp.deadline_closed;  // closed by the clock, not by a packet: no sender moment to measure from
      continue;
    }
    // The closing packet: the first whose device time reached end + lateness.
    const int64_t need = end_ns + cfg.chunking.lateness_ns;
    auto it = std::lower_bound(sent.begin(), sent.end(), std::make_pair(need, INT64_MIN));
    if (it == sent.end()) continue;
    lp.e2e.record(received - it->second);
    lp.send_to_arrival.record(trigger - it->second);
  }
  return lp;
}

std::string row(const char* name, const core::LatencyHistogram& h) {
  return fmt::format("  {:<22} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f}\n", name, h.percentile(0.5) / 1e3,
                     h.percentile(0.9) / 1e3, h.percentile(0.99) / 1e3, h.percentile(0.999) / 1e3, h.max() / 1e3);
}

void write_report(const std::string& path, const std::vector<LoadPoint>& points, const std::string& header) {
  std::ofstream o(path);
  if (!o) throw std::runtime_error(path + ": cannot write the report");
  o << "<!doctype html><html><head><meta charset=utf-8><title>spikeflow profile</title><style>"
       "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
       "padding:2px 8px;text-align:right}pre{background:#f6f6f6;padding:8px}</style></head><body>"
       "<h1>spikeflow latency profile</h1><pre>"
    << header << "</pre>";
  // Latency vs load: p50 / p99 / max of end to end against channel count.
  double ymax = 1;
  for (const auto& p : points) ymax = std::max(ymax, p.e2e.percentile(0.99) / 1e3);
  ymax *= 1.2;
  const int W = 560, H = 300, L = 60, B = 40;
  o << "<h2>End-to-end latency vs load</h2><svg width=" << W << " height=" << H << " xmlns='http://www.w3.org/2000/svg'>";
  o << "<line x1=" << L << " y1=" << H - B << " x2=" << W - 10 << " y2=" << H - B << " stroke=black />";
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
      const double x = L + 30 + (W - L - 60) * (points.size() > 1 ? double(i) / (points.size() - 1) : 0.5);
      const double y = H - B - (H - B - 10) * (points[i].e2e.percentile(qs[k]) / 1e3) / ymax;
      pts += fmt::format("{:.1f},{:.1f} ", x, y);
      o << fmt::format("<circle cx={:.1f} cy={:.1f} r=3 fill='{}' />", x, y, colors[k]);
      if (k == 0) o << fmt::format("<text x={:.1f} y={} font-size=11 text-anchor=middle>{} ch</text>", x, H - B + 16, points[i].channels);
    }
    o << "<polyline fill=none stroke='" << colors[k] << "' points='" << pts << "' />";
  }
  o << "<text x=" << W - 150 << " y=20 font-size=12 fill='#1f77b4'>p50</text><text x=" << W - 110
    << " y=20 font-size=12 fill='#d62728'>p99</text></svg>";
  // Per load: stage table and an end-to-end histogram.
  for (const auto& p : points) {
    o << fmt::format("<h2>{} channels, {:.0f} events/s</h2><p>decoder: {}; chunks {}; received {}; closed by deadline "
                     "or at end {}</p>",
                     p.channels, p.events_per_s, p.decoder, p.chunks, p.received, p.deadline_closed);
    o << "<table><tr><th>stage (us)</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th></tr>";
    const std::pair<const char*, const core::LatencyHistogram*> rows[] = {
        {"send -> arrival", &p.send_to_arrival}, {"arrival -> close", &p.close}, {"queue", &p.queue},
        {"decode", &p.decode}, {"publish", &p.publish}, {"publish -> subscriber", &p.deliver},
        {"end to end", &p.e2e}};
    for (const auto& [name, h] : rows) {
      o << fmt::format("<tr><td style=text-align:left>{}</td><td>{:.1f}</td><td>{:.1f}</td><td>{:.1f}</td><td>{:.1f}</td><td>{:.1f}</td></tr>",
                       name, h->percentile(0.5) / 1e3, h->percentile(0.9) / 1e3, h->percentile(0.99) / 1e3,
                       h->percentile(0.999) / 1e3, h->max() / 1e3);
    }
    o << "</table>";
    // Histogram of end to end, log-spaced bins from 10 us to 100 ms.
    const int nb = 40;
    std::vector<uint64_t> bins(nb, 0);
    // Re-bucket from percentiles: sample the histogram's CDF at the bin edges.
    auto cdf = [&](double us) {
      if (p.e2e.count() == 0) return 0.0;
      double lo = 0, hi = 1;
      for (int it = 0; it < 30; ++it) {
        const double mid = (lo + hi) / 2;
        (p.e2e.percentile(mid) / 1e3 <= us ? lo : hi) = mid;
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
      o << fmt::format("<rect x={} y={:.1f} width=12 height={:.1f} fill='#1f77b4' />", 20 + b * 13, 130 - h, h);
    }
    o << "<text x=20 y=150 font-size=11>10 us</text><text x=270 y=150 font-size=11>1 ms</text>"
         "<text x=500 y=150 font-size=11>100 ms</text></svg>";
  }
  o << "</body></html>\n";
}

}  // namespace

Command add_profile(CLI::App& app) {
  auto a = std::make_shared<ProfileArgs>();
  app.add_option("--channels", a->channels, "channel (unit) counts to sweep")->delimiter(',')->capture_default_str();
  app.add_option("--rate-hz", a->rate_hz, "mean firing rate per channel")->capture_default_str();
  app.add_option("--duration-s", a->duration_s, "seconds of real-time traffic per load point")->capture_default_str();
  app.add_option("--checkpoint", a->checkpoint, "decoder to profile (used where its unit count matches)");
  app.add_option("--decoder-path", a->decoder_path, "auto | fast | torch")
      ->check(CLI::IsMember({"auto", "fast", "torch"}))->capture_default_str();
  app.add_option("--threads", a->threads, "decoder threads")->capture_default_str();
  app.add_option("--transport", a->transport,
                 "publisher -> subscriber: tcp (loopback) | ipc (unix socket, for a subscriber on the same host)")
      ->check(CLI::IsMember({"tcp", "ipc"}))
      ->capture_default_str();
  app.add_flag("--record", a->record, "record every event and prediction (the recorder tap) to measure its cost");
  app.add_option("--report", a->report, "write an HTML report here");
  app.add_option("--workdir", a->workdir, "where the sessions, logs and CSVs go (default: a temp dir)");
  return [a] {
    const auto dir = a->workdir.empty()
                         ? std::filesystem::temp_directory_path() / fmt::format("spikeflow_profile_{}", ::getpid())
                         : std::filesystem::path(a->workdir);
    std::filesystem::create_directories(dir);
#ifdef NDEBUG
    const char* build = "Release";
#else
    const char* build = "Debug";
#endif
    const std::string header =
        fmt::format("build {} | cpu {} x{} | decoder threads {} | graph threads 2 | format native/udp | publish {} | record {} | "
                    "{:.0f} Hz/channel, {:.0f} s per point\n",
                    build, cpu_model(), std::thread::hardware_concurrency(), a->threads, a->transport,
                    a->record ? "on" : "off", a->rate_hz, a->duration_s);
    fmt::print("{}", header);
    std::vector<LoadPoint> points;
    std::string text = header;
    for (int ch : a->channels) {
      auto p = run_point(*a, ch, dir);
      std::string t = fmt::format("{} channels, {:.0f} events/s, decoder {}: {} chunks, {} received, {} closed by deadline/at end\n",
                                  p.channels, p.events_per_s, p.decoder, p.chunks, p.received, p.deadline_closed);
      t += fmt::format("  {:<22} {:>9} {:>9} {:>9} {:>9} {:>9}\n", "stage (us)", "p50", "p90", "p99", "p99.9", "max");
      t += row("send -> arrival", p.send_to_arrival) + row("arrival -> close", p.close) + row("queue", p.queue) +
           row("decode", p.decode) + row("publish", p.publish) + row("publish -> subscriber", p.deliver) +
           row("END TO END", p.e2e);
      fmt::print("{}", t);
      std::fflush(stdout);
      text += t;
      points.push_back(std::move(p));
    }
    if (!a->report.empty()) {
      write_report(a->report, points, text);
      fmt::print("profile: report written to {}\n", a->report);
    }
    if (a->workdir.empty()) std::filesystem::remove_all(dir);
    return 0;
  };
}

}  // namespace spikeflow::cli
