// spikeflow profile: flags only; the experiment (sender and subscriber processes around the
// pipeline under test, stage latencies, the HTML report) is pipeline/profile_experiment.h.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <string>

#include "cli/commands.h"
#include "cli/flag_checks.h"
#include "pipeline/profile_experiment.h"

namespace spikeflow::cli {

namespace {

/// The experiment's options (their defaults are the flags' defaults) and where the report goes.
struct ProfileArgs : pipeline::ProfileOptions {
  std::string report;
};

}  // namespace

Command add_profile(CLI::App& app) {
  auto a = std::make_shared<ProfileArgs>();
  app.add_option("--channels", a->channels, "channel (unit) counts to sweep")
      ->delimiter(',')
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  in_range(app.add_option("--rate-hz", a->rate_hz, "mean firing rate per channel"), 0.001, 10000)
      ->capture_default_str();
  in_range(
      app.add_option("--duration-s", a->duration_s, "seconds of real-time traffic per load point"),
      0.1, 86400)
      ->capture_default_str();
  app.add_option("--checkpoint", a->checkpoint,
                 "decoder to profile (used where its unit count matches)");
  app.add_option("--decoder-path", a->decoder_path, "auto | fast | torch")
      ->check(CLI::IsMember({"auto", "fast", "torch"}))
      ->capture_default_str();
  in_key_range(app.add_option("--threads", a->threads, "decoder threads"), "decoder.threads")
      ->capture_default_str();
  app.add_option("--transport", a->transport,
                 "publisher -> subscriber: tcp (loopback) | ipc (unix socket, for a subscriber on "
                 "the same host)")
      ->check(CLI::IsMember({"tcp", "ipc"}))
      ->capture_default_str();
  app.add_flag("--record", a->record,
               "record every event and prediction (the recorder tap) to measure its cost");
  app.add_option("--report", a->report, "write an HTML report here");
  app.add_option("--workdir", a->workdir,
                 "where the sessions, logs and CSVs go (default: a temp dir)");
  return [a] {
    a->executable = std::filesystem::read_symlink("/proc/self/exe").string();  // for send / listen
    const auto result = pipeline::run_profile(*a, [](const std::string& text) {
      fmt::print("{}", text);
      std::fflush(stdout);
    });
    if (!a->report.empty()) {
      pipeline::write_profile_report(a->report, result);
      fmt::print("profile: report written to {}\n", a->report);
    }
    return 0;
  };
}

}  // namespace spikeflow::cli
