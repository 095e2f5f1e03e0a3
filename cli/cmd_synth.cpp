#include <fmt/format.h>

#include <chrono>

#include "cli/commands.h"
#include "cli/flag_checks.h"
#include "replay/session_file.h"
#include "replay/synth_session.h"

namespace spikeflow::cli {

Command add_synth(CLI::App& app) {
  auto o = std::make_shared<replay::SynthOptions>();
  auto out = std::make_shared<std::string>();
  app.add_option("-o,--out", *out, "session file to write (.sfs)")->required();
  in_range(app.add_option("--units", o->num_units, "number of units"), 1, 1e6)->capture_default_str();
  in_range(app.add_option("--duration-s", o->duration_s, "session length, seconds"), 1e-3, 1e7)
      ->capture_default_str();
  non_negative(app.add_option("--min-rate-hz", o->min_rate_hz, "lowest baseline rate"))->capture_default_str();
  non_negative(app.add_option("--max-rate-hz", o->max_rate_hz, "highest baseline rate"))->capture_default_str();
  in_range(app.add_option("--lead-s", o->lead_s, "neural activity leads movement by"), -10, 10)->capture_default_str();
  app.add_option("--seed", o->seed, "random seed")->capture_default_str();
  return [o, out] {
    const auto t0 = std::chrono::steady_clock::now();
    replay::Session s = replay::synthesize_session(*o);
    replay::write_session_file(s, *out);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("synth: wrote {}: {} units, {} spikes, {:.0f} s, {} trials ({:.2f} s)\n", *out,
               s.num_units(), s.num_spikes(), (s.end_ns - s.start_ns) * 1e-9, s.trials.size(), secs);
    return 0;
  };
}

}  // namespace spikeflow::cli
