// Flags several commands share for reading a session: which NWB behaviour series to use, and
// which part of the one train / validation / test split (cli/split.h) to take.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "cli/flag_checks.h"

namespace spikeflow::cli {

/// --behaviour NAME and --behaviour-velocity (NWB sessions).
inline void add_behaviour_flags(CLI::App& app, std::string& behaviour, bool& velocity) {
  app.add_option("--behaviour", behaviour,
                 "NWB: behaviour series, a name under /processing/behavior (TimeSeries, or a "
                 "SpatialSeries in Position / BehavioralTimeSeries) or an HDF5 path")
      ->capture_default_str();
  app.add_flag("--behaviour-velocity", velocity,
               "NWB: derive velocity from the series (position only files; causal difference + 20 "
               "ms low-pass)");
}

/// --part all|test with --train-fraction / --val-fraction: the held-out part of the same split
/// `train` makes (eval, replay, send).
inline void add_part_flags(CLI::App& app, std::string& part, double& train_fraction,
                           double& val_fraction) {
  app.add_option("--part", part, "all | test (the held-out part, same split as train)")
      ->check(CLI::IsMember({"all", "test"}))
      ->capture_default_str();
  in_range(app.add_option("--train-fraction", train_fraction, "as for train"), 0, 1)
      ->capture_default_str();
  in_range(app.add_option("--val-fraction", val_fraction, "as for train"), 0, 1)
      ->capture_default_str();
}

}  // namespace spikeflow::cli
