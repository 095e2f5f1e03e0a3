// The outputs of `spikeflow profile` (pipeline/profile_experiment.h): the text tables printed as
// each load point finishes, the HTML report (inline SVG: end to end against load, the floor's
// and spikeflow's distributions on one plot, the stage breakdown as stacked bars, the
// per-percentile tables) and the JSON for scripts. Pure functions of a ProfileResult.
#pragma once

#include <string>

#include "pipeline/profile_experiment.h"

namespace spikeflow::pipeline {

/// The percentiles every table reports, and their labels.
inline constexpr double kProfileQuantiles[] = {0.5, 0.9, 0.99, 0.999, 1.0};
inline constexpr const char* kProfileQuantileNames[] = {"p50", "p90", "p99", "p99.9", "max"};

/// One load point's tables: the stages, floor vs spikeflow per percentile with the difference,
/// in-process vs the UDP floor, live decode vs the hot loop, each variant vs the baseline.
std::string load_point_text(const LoadPoint& point);

/// The HTML report. Throws std::runtime_error naming path when it cannot be written.
void write_profile_report(const std::string& path, const ProfileResult& result);

/// The JSON: per load point and run, every histogram's percentiles (us) and counts. Throws
/// std::runtime_error naming path when it cannot be written.
void write_profile_json(const std::string& path, const ProfileResult& result);

}  // namespace spikeflow::pipeline
