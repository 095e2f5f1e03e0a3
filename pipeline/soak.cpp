#include "pipeline/soak.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <zmq.hpp>

#include "core/time.h"
#include "models/trainer.h"
#include "pipeline/child_process.h"
#include "pipeline/contract_checker.h"
#include "replay/session_file.h"
#include "replay/synth_session.h"
#include "stages/prediction_codec.h"

namespace spikeflow::pipeline {

namespace {

namespace fs = std::filesystem;

/// Exit code, or 128 + signal.
int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// RSS, threads (/proc/PID/status) and open fds (/proc/PID/fd) of a live process.
SoakSample sample_process(pid_t pid, double t_s) {
  SoakSample s;
  s.t_s = t_s;
  std::ifstream st(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (std::getline(st, line)) {
    if (line.rfind("VmRSS:", 0) == 0) s.rss_kb = std::stoll(line.substr(6));
    if (line.rfind("Threads:", 0) == 0) s.threads = std::stoi(line.substr(8));
  }
  std::error_code ec;
  for (auto it = fs::directory_iterator(fmt::format("/proc/{}/fd", pid), ec);
       !ec && it != fs::directory_iterator(); it.increment(ec)) {
    ++s.fds;
  }
  return s;
}

/// The subscriber: its own thread owns the SUB socket and the checker.
class Subscriber {
 public:
  explicit Subscriber(std::string endpoint) : endpoint_(std::move(endpoint)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Subscriber() { stop(); }
  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  bool connected() const { return connected_.load(); }
  ContractChecker checker() const {
    std::lock_guard lock(mutex_);
    return checker_;
  }

 private:
  void loop() {
    try {
      zmq::context_t ctx(1);
      zmq::socket_t sub(ctx, zmq::socket_type::sub);
      sub.set(zmq::sockopt::linger, 0);
      sub.set(zmq::sockopt::rcvhwm, 100000);
      sub.set(zmq::sockopt::subscribe, "pred");
      sub.connect(endpoint_);
      connected_.store(true);
      zmq::pollitem_t items[] = {{sub.handle(), 0, ZMQ_POLLIN, 0}};
      core::Prediction p;
      std::string err;
      while (!stop_.load()) {
        zmq::poll(items, 1, std::chrono::milliseconds(50));
        if (!(items[0].revents & ZMQ_POLLIN)) continue;
        zmq::message_t topic, payload;
        while (sub.recv(topic, zmq::recv_flags::dontwait)) {
          if (!topic.more() || !sub.recv(payload, zmq::recv_flags::dontwait)) continue;
          const int64_t now = core::host_now_ns();
          if (!stages::decode_prediction(
                  {static_cast<const uint8_t*>(payload.data()), payload.size()}, p, &err)) {
            continue;
          }
          std::lock_guard lock(mutex_);
          checker_.feed(p, now);
        }
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "soak: subscriber: %s\n", e.what());
    }
  }

  std::string endpoint_;
  std::atomic<bool> stop_{false}, connected_{false};
  mutable std::mutex mutex_;
  ContractChecker checker_;
  std::thread thread_;
};

enum class Fault {
  kNone,
  kClockBack,
  kClockForward,
  kStopShort,
  kRateX10,
  kDeviceRestart,
  kStopLong,
  kSenderKill
};

const char* fault_name(Fault f) {
  switch (f) {
    case Fault::kNone:
      return "none";
    case Fault::kClockBack:
      return "device clock back 20 s (less after a device restart)";
    case Fault::kClockForward:
      return "device clock +100 s";
    case Fault::kStopShort:
      return "kill -STOP pipeline 0.3 s";
    case Fault::kRateX10:
      return "spike rate x10";
    case Fault::kDeviceRestart:
      return "device restart (clock and sequence from 0)";
    case Fault::kStopLong:
      return "kill -STOP pipeline 3 s";
    case Fault::kSenderKill:
      return "sender killed mid-segment";
  }
  return "?";
}

}  // namespace

SoakResult run_soak(const SoakOptions& o, const std::function<void(const std::string&)>& on_text) {
  SoakResult r;
  const bool temp = o.workdir.empty();
  const fs::path dir =
      temp ? fs::temp_directory_path() / fmt::format("spikeflow_soak_{}", ::getpid())
           : fs::path(o.workdir);
  fs::create_directories(dir);
  const double segment_s = o.fault_every_s > 0 ? o.fault_every_s : 30.0;
  const double half_s = segment_s / 2;

  replay::SynthOptions so;
  so.num_units = o.channels;
  so.duration_s = segment_s;
  so.min_rate_hz = o.rate_hz * 0.5;
  so.max_rate_hz = o.rate_hz * 1.5;
  so.seed = static_cast<uint64_t>(o.channels);
  const auto session = replay::synthesize_session(so);
  const std::string session_path = (dir / "session.sfs").string(),
                    ckpt = (dir / "model.ckpt").string();
  replay::write_session_file(session, session_path);
  models::save_untrained_possm(ckpt, models::PossmConfig{}, session.units, 2, 50'000'000);
  on_text(fmt::format(
      "soak: {} channels, {:.0f} spikes/s, {:.0f} s, a fault every {:.0f} s; work dir {}\n",
      o.channels, static_cast<double>(session.num_spikes()) / segment_s, o.duration_s, segment_s,
      dir.string()));

  const std::string run_log = (dir / "run.log").string();
  const pid_t run_pid = spawn_logged(
      {o.executable, "run", "--checkpoint", ckpt, "--port", "0", "--publish", "tcp://127.0.0.1:*"},
      run_log, "soak");
  const std::regex ready(R"(ingest \S+ \S+ \S+:(\d+) \| publish (\S+))");
  std::smatch m;
  std::string log;
  const int64_t t_start = core::host_now_ns();
  auto elapsed_s = [&] { return static_cast<double>(core::host_now_ns() - t_start) * 1e-9; };
  for (;;) {
    log = slurp(run_log);
    if (std::regex_search(log, m, ready)) break;
    int status = 0;
    if (waitpid(run_pid, &status, WNOHANG) == run_pid || elapsed_s() > 120) {
      kill(run_pid, SIGKILL);
      waitpid(run_pid, &status, 0);
      throw std::runtime_error("soak: the pipeline never became ready: " + log);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const std::string port = m[1].str(), endpoint = m[2].str();
  Subscriber sub(endpoint);
  while (!sub.connected()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(
      300));  // the SUB joins before data flows; the checker takes any baseline

  const int64_t t0 = core::host_now_ns();
  auto since_s = [&] { return static_cast<double>(core::host_now_ns() - t0) * 1e-9; };
  double next_sample = 0;
  auto maybe_sample = [&] {
    if (since_s() < next_sample) return;
    r.samples.push_back(sample_process(run_pid, since_s()));
    next_sample += o.sample_every_s;
    const auto& s = r.samples.back();
    const auto c = sub.checker();
    on_text(fmt::format(
        "soak: t={:.0f}s rss={:.1f} MB fds={} threads={} received={} lost={} violations={}\n",
        s.t_s, s.rss_kb / 1024.0, s.fds, s.threads, c.received(), c.lost(), c.violations()));
  };
  const Fault cycle[] = {Fault::kClockBack, Fault::kClockForward,  Fault::kStopShort,
                         Fault::kRateX10,   Fault::kDeviceRestart, Fault::kStopLong,
                         Fault::kSenderKill};
  // Every sender's device clock is this host's CLOCK_MONOTONIC + 1000 s (so a jump back stays
  // >= 0) + shift, so consecutive senders continue one clock whatever their start-up time;
  // shift carries the jumps and restarts into later segments.
  double shift_s = 1000, restart_host_s = 0;
  for (int k = 0; since_s() + 1 < o.duration_s; ++k) {
    const Fault f =
        (o.fault_every_s <= 0 || k == 0) ? Fault::kNone : cycle[(k - 1) % std::size(cycle)];
    const double seg_start = since_s();
    std::vector<std::string> args{o.executable,
                                  "send",
                                  "-s",
                                  session_path,
                                  "--port",
                                  port,
                                  "-q",
                                  "--device-clock-monotonic",
                                  "--device-offset-s",
                                  fmt::format("{:.6f}", shift_s)};
    const double play_s = std::min(segment_s, o.duration_s - seg_start);
    args.insert(args.end(), {"--max-seconds", fmt::format("{:.3f}", play_s)});
    // 20 s back, or less when a device restart left the clock nearer 0 (it never goes below).
    const double back_s = std::min(
        20.0, std::floor(static_cast<double>(core::host_now_ns()) * 1e-9 + shift_s + half_s - 1));
    if (f == Fault::kClockBack) {
      args.insert(args.end(), {"--clock-jump-at-s", fmt::format("{}", half_s), "--clock-jump-s",
                               fmt::format("{}", -back_s)});
    }
    if (f == Fault::kClockForward)
      args.insert(args.end(),
                  {"--clock-jump-at-s", fmt::format("{}", half_s), "--clock-jump-s", "100"});
    if (f == Fault::kRateX10) args.insert(args.end(), {"--rate-multiplier", "10"});
    if (f == Fault::kDeviceRestart)
      args.insert(args.end(), {"--restart-at-s", fmt::format("{}", half_s)});
    r.faults.push_back(fmt::format("t={:.1f}s segment {}: {}", seg_start, k, fault_name(f)));
    on_text("soak: " + r.faults.back() + "\n");
    const pid_t sender =
        spawn_logged(args, (dir / fmt::format("send_{}.log", k % 2)).string(), "soak");
    bool injected = false;
    int status = 0;
    for (;;) {
      maybe_sample();
      if (waitpid(sender, &status, WNOHANG) == sender) break;
      if (!injected && since_s() - seg_start >= half_s) {
        injected = true;
        restart_host_s =
            static_cast<double>(core::host_now_ns()) * 1e-9;  // about when a device restart happens
        if (f == Fault::kStopShort || f == Fault::kStopLong) {
          kill(run_pid, SIGSTOP);
          std::this_thread::sleep_for(
              std::chrono::milliseconds(f == Fault::kStopShort ? 300 : 3000));
          kill(run_pid, SIGCONT);
        }
        if (f == Fault::kSenderKill) kill(sender, SIGKILL);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    const int rc = exit_code(status);
    if (rc != 0 && !(f == Fault::kSenderKill && rc == 128 + SIGKILL)) {
      ++r.sender_failures;
      on_text(fmt::format("soak: sender exited {}: {}\n", rc,
                          slurp((dir / fmt::format("send_{}.log", k % 2)).string())));
    }
    if (f == Fault::kClockBack) shift_s -= back_s;
    if (f == Fault::kClockForward) shift_s += 100;
    if (f == Fault::kDeviceRestart)
      shift_s = -restart_host_s;  // the restarted clock goes on from ~0
  }
  next_sample = 0;
  maybe_sample();  // the end, before the pipeline stops
  kill(run_pid, SIGTERM);
  int status = 0;
  waitpid(run_pid, &status, 0);
  r.run_exit = exit_code(status);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the last messages in flight
  sub.stop();

  const auto c = sub.checker();
  r.received = c.received();
  r.lost = c.lost();
  r.violations = c.violations();
  r.duplicates = c.violations(ContractViolation::kDuplicateChunk);
  r.late_flagged = c.late_flagged();
  r.epochs = c.epochs_seen();
  r.new_epoch = c.new_epoch_flags();
  r.max_silence_ms = static_cast<double>(c.max_silence_ns()) / 1e6;
  r.checker_summary = c.summary();
  if (!r.samples.empty()) {
    r.start = r.samples.front();
    r.end = r.samples.back();
    r.warm = r.end;
    for (const auto& s : r.samples) {
      if (s.t_s >= std::min(o.warmup_s, o.duration_s / 2)) {
        r.warm = s;
        break;
      }
    }
    for (const auto& s : r.samples) {
      r.max.rss_kb = std::max(r.max.rss_kb, s.rss_kb);
      r.max.fds = std::max(r.max.fds, s.fds);
      r.max.threads = std::max(r.max.threads, s.threads);
    }
  }
  if (r.violations > 0) r.failures.push_back(fmt::format("{} contract violations", r.violations));
  if (r.end.rss_kb > r.warm.rss_kb + static_cast<int64_t>(o.max_rss_growth_mb * 1024)) {
    r.failures.push_back(
        fmt::format("RSS grew {:.1f} MB after warm-up", (r.end.rss_kb - r.warm.rss_kb) / 1024.0));
  }
  if (r.end.fds != r.warm.fds)
    r.failures.push_back(fmt::format("open fds {} -> {}", r.warm.fds, r.end.fds));
  if (r.end.threads != r.warm.threads)
    r.failures.push_back(fmt::format("threads {} -> {}", r.warm.threads, r.end.threads));
  if (r.run_exit != 0) r.failures.push_back(fmt::format("the pipeline exited {}", r.run_exit));
  if (r.sender_failures > 0)
    r.failures.push_back(fmt::format("{} senders failed", r.sender_failures));
  if (r.received == 0) r.failures.push_back("no prediction received");
  if (temp && r.passed()) fs::remove_all(dir);
  return r;
}

void write_soak_report(const std::string& path, const SoakOptions& o, const SoakResult& r) {
  auto sample_json = [](const SoakSample& s) {
    return fmt::format(R"({{"t_s": {:.1f}, "rss_kb": {}, "fds": {}, "threads": {}}})", s.t_s,
                       s.rss_kb, s.fds, s.threads);
  };
  std::string samples, faults, failures;
  for (const auto& s : r.samples) samples += (samples.empty() ? "" : ", ") + sample_json(s);
  for (const auto& f : r.faults) faults += fmt::format("{}\"{}\"", faults.empty() ? "" : ", ", f);
  for (const auto& f : r.failures)
    failures += fmt::format("{}\"{}\"", failures.empty() ? "" : ", ", f);
  std::ofstream out(path);
  out << fmt::format(
      "{{\n  \"duration_s\": {}, \"channels\": {}, \"fault_every_s\": {},\n  \"passed\": {},\n  "
      "\"failures\": [{}],\n"
      "  \"received\": {}, \"lost\": {}, \"violations\": {}, \"duplicates\": {}, \"late_flagged\": "
      "{}, \"epochs\": {},"
      " \"new_epoch\": {}, \"max_silence_ms\": {:.1f},\n  \"run_exit\": {}, \"sender_failures\": "
      "{},\n"
      "  \"start\": {}, \"warm\": {}, \"end\": {}, \"max\": {},\n  \"faults\": [{}],\n  "
      "\"samples\": [{}]\n}}\n",
      o.duration_s, o.channels, o.fault_every_s, r.passed() ? "true" : "false", failures,
      r.received, r.lost, r.violations, r.duplicates, r.late_flagged, r.epochs, r.new_epoch,
      r.max_silence_ms, r.run_exit, r.sender_failures, sample_json(r.start), sample_json(r.warm),
      sample_json(r.end), sample_json(r.max), faults, samples);
  if (!out) throw std::runtime_error(path + ": cannot write the soak report");
}

}  // namespace spikeflow::pipeline
