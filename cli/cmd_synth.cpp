#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "cli/commands.h"
#include "cli/flag_checks.h"
#include "replay/session_file.h"
#include "replay/synth_session.h"

namespace spikeflow::cli {

Command add_synth(CLI::App& app) {
  auto o = std::make_shared<replay::SynthOptions>();
  auto out = std::make_shared<std::string>();
  app.add_option("-o,--out", *out, "session file to write (.sfs)")->required();
  in_range(app.add_option("--units", o->num_units, "number of units"), 1, 1e6)
      ->capture_default_str();
  in_range(app.add_option("--duration-s", o->duration_s, "session length, seconds"), 1e-3, 1e7)
      ->capture_default_str();
  non_negative(app.add_option("--min-rate-hz", o->min_rate_hz, "lowest baseline rate"))
      ->capture_default_str();
  non_negative(app.add_option("--max-rate-hz", o->max_rate_hz, "highest baseline rate"))
      ->capture_default_str();
  in_range(app.add_option("--lead-s", o->lead_s, "neural activity leads movement by"), -10, 10)
      ->capture_default_str();
  app.add_option("--seed", o->seed, "random seed")->capture_default_str();
  auto corpus = std::make_shared<replay::SynthCorpusOptions>();
  in_range(app.add_option("--sessions", corpus->num_sessions,
                          "write a corpus of N sessions (shared movement, own units, drift, unit "
                          "turnover) into the directory -o as session_00.sfs ..."),
           1, 10000);
  in_range(app.add_option("--min-units", corpus->min_units, "corpus: fewest units per session"), 1,
           65535)
      ->capture_default_str();
  in_range(app.add_option("--max-units", corpus->max_units, "corpus: most units per session"), 1,
           65535)
      ->capture_default_str();
  in_range(app.add_option("--drift", corpus->drift, "corpus: gain drift per unit over a session"),
           0, 1)
      ->capture_default_str();
  in_range(app.add_option("--turnover", corpus->turnover,
                          "corpus: fraction of units appearing/vanishing"),
           0, 1)
      ->capture_default_str();
  auto* sessions_opt = app.get_option("--sessions");
  return [o, out, corpus, sessions_opt] {
    if (sessions_opt->count() > 0) {
      corpus->duration_s = o->duration_s;
      corpus->seed = o->seed;
      std::filesystem::create_directories(*out);
      for (int k = 0; k < corpus->num_sessions; ++k) {
        replay::Session s = replay::synthesize_corpus_session(*corpus, k);
        const std::string path = fmt::format("{}/session_{:02d}.sfs", *out, k);
        replay::write_session_file(s, path);
        fmt::print("synth: wrote {}: {} units, {} spikes, {:.0f} s\n", path, s.num_units(),
                   s.num_spikes(), (s.end_ns - s.start_ns) * 1e-9);
      }
      return 0;
    }
    const auto t0 = std::chrono::steady_clock::now();
    replay::Session s = replay::synthesize_session(*o);
    replay::write_session_file(s, *out);
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print("synth: wrote {}: {} units, {} spikes, {:.0f} s, {} trials ({:.2f} s)\n", *out,
               s.num_units(), s.num_spikes(), (s.end_ns - s.start_ns) * 1e-9, s.trials.size(),
               secs);
    return 0;
  };
}

}  // namespace spikeflow::cli
