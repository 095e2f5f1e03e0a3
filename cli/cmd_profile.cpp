// spikeflow profile: flags only; the experiment (sender and subscriber processes around the
// pipeline under test, the transport floor, the in-process consumer, the hot loop, variants) is
// pipeline/profile_experiment.h, its tables, HTML and JSON pipeline/profile_report.h.
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/flag_checks.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/profile_experiment.h"
#include "pipeline/profile_report.h"

namespace spikeflow::cli {

namespace {

/// The experiment's options (their defaults are the flags' defaults) and where the report goes.
struct ProfileArgs : pipeline::ProfileOptions {
  std::string report, json, config;
  std::vector<std::string> variant_specs;
  bool no_floor = false, no_in_process = false, no_hot_loop = false;
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
  app.add_option("--decoder-path", a->decoder_path,
                 "auto | fast | torch (default: the config's decoder.path)")
      ->check(CLI::IsMember({"auto", "fast", "torch"}));
  in_key_range(app.add_option("--threads", a->threads,
                              "decoder threads (default: the config's decoder.threads)"),
               "decoder.threads");
  app.add_option("-c,--config", a->config,
                 "base pipeline config (YAML) for every run; the profile sets ingest (native/udp, "
                 "loopback, ephemeral port), the publish endpoint and metrics itself");
  app.add_option("--variant", a->variant_specs,
                 "NAME:key=value[,key=value...]: rerun each load point with these config keys "
                 "overridden (any key of `spikeflow run --describe-config`); repeatable");
  app.add_flag("--no-floor", a->no_floor, "skip the bare-transport floor run");
  app.add_flag("--no-in-process", a->no_in_process, "skip the in-process consumer run");
  app.add_flag("--no-hot-loop", a->no_hot_loop, "skip the hot-loop decode");
  app.add_option("--transport", a->transport,
                 "publisher -> subscriber: tcp (loopback) | ipc (unix socket, for a subscriber on "
                 "the same host)")
      ->check(CLI::IsMember({"tcp", "ipc"}))
      ->capture_default_str();
  app.add_flag("--record", a->record,
               "record every event and prediction (the recorder tap) to measure its cost");
  app.add_option("--report", a->report, "write an HTML report here");
  app.add_option("--json", a->json, "write the results as JSON here");
  app.add_option("--workdir", a->workdir,
                 "where the sessions, logs and CSVs go (default: a temp dir)");
  return [a] {
    a->executable = std::filesystem::read_symlink("/proc/self/exe").string();  // for send / listen
    a->base = a->config.empty() ? pipeline::parse_pipeline_config("", "built-in defaults")
                                : pipeline::load_pipeline_config(a->config);
    for (const auto& spec : a->variant_specs)
      a->variants.push_back(pipeline::parse_profile_variant(spec));
    a->floor = !a->no_floor;
    a->in_process = !a->no_in_process;
    a->hot_loop = !a->no_hot_loop;
    const auto result = pipeline::run_profile(*a, [](const std::string& text) {
      fmt::print("{}", text);
      std::fflush(stdout);
    });
    if (!a->report.empty()) {
      pipeline::write_profile_report(a->report, result);
      fmt::print("profile: report written to {}\n", a->report);
    }
    if (!a->json.empty()) {
      pipeline::write_profile_json(a->json, result);
      fmt::print("profile: JSON written to {}\n", a->json);
    }
    return 0;
  };
}

}  // namespace spikeflow::cli
