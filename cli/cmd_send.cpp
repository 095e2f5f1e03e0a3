#include <fmt/format.h>

#include <atomic>
#include <csignal>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/flag_checks.h"
#include "cli/session_flags.h"
#include "cli/split.h"
#include "core/time.h"
#include "pipeline/sender.h"
#include "replay/session_file.h"
#include "stages/native_packet.h"

namespace spikeflow::cli {

namespace {

struct SendArgs {
  std::string session;
  std::string part = "all";
  double train_fraction = 0.7, val_fraction = 0.1, width_ms = 50.0;
  double max_seconds = 0;
  pipeline::SendOptions opts;
  double interval_ms = 1.0;
  bool quiet = false;
  std::string send_log;
  double clock_jump_at_s = -1, clock_jump_s = 0, restart_at_s = -1, device_offset_s = 0;
  bool device_clock_monotonic = false;
  int rate_multiplier = 1;
};

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

}  // namespace

Command add_send(CLI::App& app) {
  auto a = std::make_shared<SendArgs>();
  app.add_option("-s,--session", a->session, "session file (.sfs or .mat)")->required();
  app.add_option("--format", a->opts.format, pipeline::enum_choices<pipeline::IngestFormat>())
      ->transform(enum_names<pipeline::IngestFormat>())
      ->default_str(std::string(pipeline::to_string(a->opts.format)));
  app.add_option("--transport", a->opts.transport, "udp | tcp")
      ->transform(enum_names<pipeline::Transport>())
      ->default_str(std::string(pipeline::to_string(a->opts.transport)));
  app.add_option("--blackrock-protocol", a->opts.blackrock_protocol,
                 pipeline::enum_choices<stages::BlackrockProtocol>())
      ->transform(enum_names<stages::BlackrockProtocol>())
      ->default_str(std::string(pipeline::to_string(a->opts.blackrock_protocol)));
  in_key_range(app.add_option("--sample-rate-hz", a->opts.sample_rate_hz,
                              "Intan / Blackrock 3.11 clock, Hz"),
               "ingest.sample_rate_hz")
      ->capture_default_str();
  app.add_option("--address", a->opts.address, "destination address")->capture_default_str();
  in_range(app.add_option("--port", a->opts.port, "destination port"), 1,
           pipeline::pipeline_config_key("ingest.port").max)
      ->capture_default_str();
  in_range(app.add_option("--speed", a->opts.speed, "x real time; 0 = as fast as possible"), 0, 1e6)
      ->capture_default_str();
  in_range(app.add_option("--interval-ms", a->interval_ms, "packet interval, ms"), 0.001, 10000)
      ->capture_default_str();
  in_range(
      app.add_option("--max-events-per-packet", a->opts.max_events_per_packet, "datagram size cap"),
      1, static_cast<double>(stages::kMaxEventsPerDatagram))
      ->capture_default_str();
  app.add_option("--stream-id", a->opts.stream_id, "sender identity in the header")
      ->capture_default_str();
  add_part_flags(app, a->part, a->train_fraction, a->val_fraction);
  non_negative(app.add_option("--max-seconds", a->max_seconds,
                              "play at most this much session time (0 = all)"))
      ->capture_default_str();
  app.add_flag("-q,--quiet", a->quiet, "no progress lines");
  app.add_option("--send-log", a->send_log,
                 "write (device_time_ns, host send ns) per packet, binary i64 pairs");
  non_negative(
      app.add_option("--clock-jump-at-s", a->clock_jump_at_s,
                     "fault: the device clock jumps by --clock-jump-s this long after the start"));
  app.add_option("--clock-jump-s", a->clock_jump_s, "fault: size of the jump, s (negative = back)");
  non_negative(app.add_option(
      "--restart-at-s", a->restart_at_s,
      "fault: device restart this long after the start (clock and sequence numbers from 0)"));
  app.add_option(
      "--device-offset-s", a->device_offset_s,
      "added to every device time sent (default: |jump| for a jump back, so it stays >= 0)");
  app.add_flag("--device-clock-monotonic", a->device_clock_monotonic,
               "the device clock is this host's CLOCK_MONOTONIC (+ offset), like a device "
               "synchronised to the host: "
               "consecutive senders continue one clock");
  in_range(app.add_option("--rate-multiplier", a->rate_multiplier,
                          "fault: every spike K times, jittered within 1 ms"),
           1, 100)
      ->capture_default_str();
  return [a] {
    if (a->opts.transport == pipeline::Transport::kNone)
      throw UsageError("--transport: must be udp or tcp");
    if (auto why = pipeline::format_transport_problem(a->opts.format, a->opts.transport)) {
      throw UsageError(fmt::format("--transport: {} for --format {}", *why,
                                   pipeline::to_string(a->opts.format)));
    }
    replay::Session s = replay::load_session(a->session);
    int64_t from = s.start_ns, to = s.end_ns;
    if (a->part == "test") {
      from = make_split(s, a->train_fraction, a->val_fraction,
                        static_cast<int64_t>(a->width_ms * core::kNsPerMs))
                 .test_from;
    }
    if (a->max_seconds > 0)
      to = std::min(to, from + static_cast<int64_t>(a->max_seconds * core::kNsPerS));
    auto events = replay::merged_events(s, from, to);
    if (a->rate_multiplier > 1) events = pipeline::multiply_rate(events, a->rate_multiplier);
    if ((a->clock_jump_at_s >= 0) != (a->clock_jump_s != 0)) {
      throw UsageError("--clock-jump-at-s and --clock-jump-s go together");
    }
    auto to_ns = [](double s) {
      return s < 0 ? int64_t{-1} : static_cast<int64_t>(s * core::kNsPerS);
    };
    a->opts.clock_jump_at_ns = to_ns(a->clock_jump_at_s);
    a->opts.clock_jump_ns = static_cast<int64_t>(a->clock_jump_s * core::kNsPerS);
    a->opts.restart_at_ns = to_ns(a->restart_at_s);
    a->opts.device_offset_ns = static_cast<int64_t>(a->device_offset_s * core::kNsPerS);
    if (a->device_offset_s == 0 && a->clock_jump_s < 0 && !a->device_clock_monotonic) {
      a->opts.device_offset_ns = -a->opts.clock_jump_ns;
    }
    a->opts.packet_interval_ns = static_cast<int64_t>(a->interval_ms * core::kNsPerMs);
    a->opts.start_device_ns = from;
    a->opts.end_device_ns = to;
    std::signal(SIGINT, on_signal);
    std::signal(SIGTERM, on_signal);
    fmt::print("send: {} spikes, {:.1f} s of session as {} to {} {}:{} at {}x\n", events.size(),
               (to - from) * 1e-9, pipeline::to_string(a->opts.format),
               pipeline::to_string(a->opts.transport), a->opts.address, a->opts.port,
               a->opts.speed);
    std::fflush(stdout);
    auto progress = a->quiet ? nullptr : +[](const pipeline::SendStats& st, int64_t) {
      fmt::print("send: t={:.0f}s packets={} events={}\n", st.seconds, st.packets, st.events);
      std::fflush(stdout);
    };
    std::vector<std::pair<int64_t, int64_t>> log;
    if (!a->send_log.empty()) a->opts.send_log = &log;
    // Read last, right before the pacer reads the host clock, so the two clocks agree.
    if (a->device_clock_monotonic) a->opts.device_offset_ns += core::host_now_ns() - from;
    const auto st = pipeline::send_events(events, a->opts, &g_stop, progress);
    if (!a->send_log.empty()) pipeline::write_send_log(a->send_log, log);
    fmt::print("send: done: {} packets, {} events, {} send errors in {:.2f} s\n", st.packets,
               st.events, st.send_errors, st.seconds);
    return 0;
  };
}

}  // namespace spikeflow::cli
