#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>

#include "cli/commands.h"
#include "cli/flag_checks.h"
#include "cli/signals.h"
#include "core/time.h"
#include "models/load_decoder.h"
#include "models/streaming_decoder.h"
#include "pipeline/live_pipeline.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/preflight.h"
#include "pipeline/recorder.h"

namespace spikeflow::cli {

namespace {

struct RunArgs {
  std::string config;
  std::string checkpoint;
  int port = 0;
  std::string publish;
  std::string record;
  double duration_s = 0;
  bool describe = false;
  double calibration_s = 0;
  std::string calibration_out;
};

/// `run --calibration-block S --calibration-out PATH`: the first S seconds of spikes (device
/// clock, from the first spike received) in a recording of their own, written by a Recorder (its
/// own thread; the tap only queues, never blocks), while the pipeline decodes as usual. Once a
/// spike at or past the end arrives, the tap stops feeding it and flags it done; the main loop
/// then closes the file (END record) and says how to calibrate from it. Spikes before the
/// block's start (a device clock that went back) are left out and counted.
class CalibrationBlock {
 public:
  CalibrationBlock(const std::string& path, double seconds, const std::string& config_text,
                   const std::string& model, const std::string& identity,
                   const std::vector<core::UnitKey>& units)
      : path_(path),
        window_ns_(static_cast<int64_t>(seconds * 1e9)),
        recorder_(std::make_unique<pipeline::Recorder>(path, config_text, model, identity, units)) {
  }

  /// Tap thread (LiveOptions::on_batch), in the binner's order.
  void on_batch(const core::EventBatch& b) {
    if (done_.load(std::memory_order_relaxed) || b.events.empty()) return;
    if (start_ns_ < 0) {
      start_ns_ = b.events.front().t_ns;
      for (const auto& e : b.events) start_ns_ = std::min(start_ns_, e.t_ns);
    }
    const int64_t end = start_ns_ + window_ns_;
    core::EventBatch in;
    in.arrival_host_ns = b.arrival_host_ns;
    in.device_time_ns = b.device_time_ns;
    bool past_end = false;
    for (const auto& e : b.events) {
      if (e.t_ns < start_ns_) {
        ++before_start_;
      } else if (e.t_ns >= end) {
        past_end = true;
      } else {
        in.events.push_back(e);
        last_ns_ = std::max(last_ns_, e.t_ns);
      }
    }
    spikes_ += in.events.size();
    if (!in.events.empty()) recorder_->record(in);
    if (past_end) done_.store(true, std::memory_order_release);
  }

  bool done() const { return done_.load(std::memory_order_acquire); }

  /// Main thread, once done() or after the pipeline stopped (no tap runs any more). Idempotent.
  void close() {
    if (closed_) return;
    closed_ = true;
    recorder_->stop();
    const auto st = recorder_->stats();
    const double got_s = start_ns_ < 0 ? 0.0 : static_cast<double>(last_ns_ - start_ns_) / 1e9;
    if (!done()) {
      spdlog::warn(
          "run: calibration block {} cut short: {:.1f} s of {:.1f} s recorded ({} spikes) "
          "before the run stopped",
          path_, got_s, static_cast<double>(window_ns_) / 1e9, spikes_);
    } else {
      spdlog::info(
          "run: calibration block complete: {} ({:.1f} s from device time {:.3f} s, {} spikes); "
          "calibrate with: spikeflow calibrate --base BASE.ckpt --recording {} --behavior FILE "
          "-o NEW.ckpt",
          path_, static_cast<double>(window_ns_) / 1e9, static_cast<double>(start_ns_) / 1e9,
          spikes_, path_);
    }
    if (before_start_ > 0)
      spdlog::warn("run: calibration block {}: {} spike(s) before its start left out", path_,
                   before_start_);
    if (st.dropped > 0 || st.io_errors > 0)
      spdlog::error("run: calibration block {}: {} packet(s) dropped, {} I/O error(s)", path_,
                    st.dropped, st.io_errors);
  }

 private:
  std::string path_;
  int64_t window_ns_;
  std::unique_ptr<pipeline::Recorder> recorder_;
  // Tap thread only until done() (release/acquire) or the pipeline stopped.
  int64_t start_ns_ = -1;
  int64_t last_ns_ = 0;
  uint64_t spikes_ = 0;
  uint64_t before_start_ = 0;
  std::atomic<bool> done_{false};
  bool closed_ = false;  // main thread
};

}  // namespace

Command add_run(CLI::App& app) {
  auto a = std::make_shared<RunArgs>();
  app.add_option("-c,--config", a->config,
                 "pipeline config (YAML; relative paths in it are relative to its folder); "
                 "defaults apply without one");
  app.add_option("--checkpoint", a->checkpoint, "overrides decoder.checkpoint");
  auto* port =
      in_key_range(app.add_option("--port", a->port, "overrides ingest.port"), "ingest.port");
  app.add_option("--publish", a->publish, "overrides publish.endpoint");
  app.add_option("--record", a->record,
                 "overrides record.path: record packets and predictions to this file");
  non_negative(app.add_option("--duration-s", a->duration_s,
                              "stop by itself after this long (0 = until signalled)"));
  app.add_flag("--describe-config", a->describe,
               "print every config key with unit, default and range");
  auto* cal_s = in_range(app.add_option("--calibration-block", a->calibration_s,
                                        "record the first SECONDS of spikes (device clock) to "
                                        "--calibration-out for `spikeflow calibrate --recording`"),
                         1, 1e6);
  auto* cal_out = app.add_option("-o,--calibration-out", a->calibration_out,
                                 "calibration block recording to write (with --calibration-block)");
  cal_s->needs(cal_out);
  cal_out->needs(cal_s);
  return [a, port] {
    if (a->describe) {
      fmt::print("{:<34} {:<8} {:<9} {:<24} {:<28} {}\n", "key", "type", "unit", "default", "range",
                 "meaning");
      for (const auto& k : pipeline::pipeline_config_keys()) {
        fmt::print("{:<34} {:<8} {:<9} {:<24} {:<28} {}\n", k.name, k.type_name(), k.unit,
                   k.default_text(), k.range_text(), k.doc);
      }
      return 0;
    }
    const sigset_t signals = block_termination_signals();  // before any thread exists
    const std::string source = a->config.empty() ? "built-in defaults" : a->config;
    pipeline::PipelineConfig cfg = a->config.empty() ? pipeline::parse_pipeline_config("", source)
                                                     : pipeline::load_pipeline_config(a->config);
    if (!a->checkpoint.empty()) cfg.decoder.checkpoint = a->checkpoint;
    if (port->count() > 0) cfg.ingest.port = a->port;
    if (!a->publish.empty()) cfg.publish.endpoint = a->publish;
    if (!a->record.empty()) cfg.record.path = a->record;
    // Config and checkpoint together, every problem at once, before any socket or thread.
    auto decoder = pipeline::load_checked_decoder(cfg, source);
    const std::string model = decoder->describe();
    pipeline::LiveOptions lo;
    lo.model_identity = pipeline::file_identity(cfg.decoder.checkpoint);
    std::unique_ptr<CalibrationBlock> calibration;
    if (a->calibration_s > 0) {
      calibration = std::make_unique<CalibrationBlock>(a->calibration_out, a->calibration_s,
                                                       pipeline::to_yaml(cfg), model,
                                                       lo.model_identity, decoder->units());
      lo.on_batch = [c = calibration.get()](const core::EventBatch& b) { c->on_batch(b); };
    }
    pipeline::LivePipeline live(cfg, std::move(decoder), std::move(lo));
    live.start();
    // Listening: "tcp 127.0.0.1:47000"; client mode (ingest.connect): "tcp connect 127.0.0.1:5002".
    const std::string where = cfg.ingest.connect.empty()
                                  ? cfg.ingest.address + ":" + std::to_string(live.ingest_port())
                                  : "connect " + cfg.ingest.connect;
    spdlog::info("run: decoder {} | ingest {} {} {} | publish {} {} topic '{}' | chunks {} ms",
                 model, pipeline::to_string(cfg.ingest.format),
                 pipeline::to_string(cfg.ingest.transport), where, live.publish_endpoint(),
                 pipeline::to_string(cfg.publish.format), cfg.publish.topic,
                 cfg.chunking.width_ns / 1e6);
    const auto t0 = std::chrono::steady_clock::now();
    auto last_print = t0;
    const int poll_ms = 100;
    int sig = 0;
    for (;;) {
      sig = wait_termination_signal(signals, poll_ms);
      if (sig) break;
      if (calibration && calibration->done()) calibration->close();
      const auto now = std::chrono::steady_clock::now();
      const double elapsed = std::chrono::duration<double>(now - t0).count();
      if (a->duration_s > 0 && elapsed >= a->duration_s) break;
      if (cfg.metrics.print_interval_s > 0 &&
          std::chrono::duration<double>(now - last_print).count() >= cfg.metrics.print_interval_s) {
        last_print = now;
        const auto s = live.stats();
        spdlog::info(
            "run: t={:.0f}s packets={} events={} chunks={} predictions={} dropped_packets={} "
            "late={} total p50={:.0f}us p99={:.0f}us",
            elapsed, s.ingest.packets_accepted, s.ingest.events_accepted, s.decode.chunks,
            s.predictions, s.ingest.packets_dropped(), s.binner.late_events,
            s.total_latency.percentile(0.5) / 1e3, s.total_latency.percentile(0.99) / 1e3);
      }
    }
    const auto stop_start = core::host_now_ns();
    live.stop();
    const double stop_ms = (core::host_now_ns() - stop_start) / 1e6;
    if (calibration) calibration->close();
    spdlog::info("run: {}; drained and stopped in {:.1f} ms",
                 sig ? strsignal(sig) : "duration reached", stop_ms);
    fmt::print("{}", pipeline::format_report(live.stats()));
    return 0;
  };
}

}  // namespace spikeflow::cli
