#include <fmt/format.h>

#include <cstdio>
#include <filesystem>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/flag_checks.h"
#include "pipeline/soak.h"

namespace spikeflow::cli {

namespace {

struct SoakArgs {
  pipeline::SoakOptions opts;
  std::string report;
};

}  // namespace

Command add_soak(CLI::App& app) {
  auto a = std::make_shared<SoakArgs>();
  in_range(app.add_option("--duration-s", a->opts.duration_s, "how long the pipeline runs"), 10,
           7 * 86400)
      ->capture_default_str();
  in_range(app.add_option("--channels", a->opts.channels, "sender channel (unit) count"), 1, 65536)
      ->capture_default_str();
  in_range(app.add_option("--rate-hz", a->opts.rate_hz, "mean firing rate per channel"), 0.1, 1000)
      ->capture_default_str();
  in_range(app.add_option("--fault-every-s", a->opts.fault_every_s,
                          "one fault per this long (0 = none)"),
           0, 3600)
      ->capture_default_str();
  in_range(app.add_option("--sample-every-s", a->opts.sample_every_s,
                          "RSS / fds / threads sampling period"),
           0.1, 3600)
      ->capture_default_str();
  non_negative(app.add_option("--warmup-s", a->opts.warmup_s, "growth is measured from here"))
      ->capture_default_str();
  non_negative(app.add_option("--max-rss-growth-mb", a->opts.max_rss_growth_mb,
                              "allowed RSS growth after warm-up"))
      ->capture_default_str();
  app.add_option("--workdir", a->opts.workdir,
                 "keep session, model and logs here (default: a temp dir)");
  app.add_option("--report", a->report, "write the result as JSON");
  return [a] {
    a->opts.executable = std::filesystem::read_symlink("/proc/self/exe").string();
    const auto r = pipeline::run_soak(a->opts, [](const std::string& s) {
      fmt::print("{}", s);
      std::fflush(stdout);
    });
    auto line = [](const char* what, const pipeline::SoakSample& s) {
      fmt::print("soak: {:<5} t={:>6.0f}s rss={:.1f} MB fds={} threads={}\n", what, s.t_s,
                 s.rss_kb / 1024.0, s.fds, s.threads);
    };
    line("start", r.start);
    line("warm", r.warm);
    line("end", r.end);
    fmt::print("soak: max   rss={:.1f} MB fds={} threads={} (each over all samples)\n",
               r.max.rss_kb / 1024.0, r.max.fds, r.max.threads);
    fmt::print("soak: {}", r.checker_summary);
    if (!a->report.empty()) pipeline::write_soak_report(a->report, a->opts, r);
    if (!r.passed()) {
      std::string why;
      for (const auto& f : r.failures) why += (why.empty() ? "" : "; ") + f;
      throw ExitError(kMismatch, "soak failed: " + why);
    }
    fmt::print("soak: passed\n");
    return 0;
  };
}

}  // namespace spikeflow::cli
