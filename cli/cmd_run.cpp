#include <fmt/format.h>
#include <spdlog/spdlog.h>

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
    spdlog::info("run: {}; drained and stopped in {:.1f} ms",
                 sig ? strsignal(sig) : "duration reached", stop_ms);
    fmt::print("{}", pipeline::format_report(live.stats()));
    return 0;
  };
}

}  // namespace spikeflow::cli
