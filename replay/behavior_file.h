// A session's behaviour from a file of its own, and a session built from a calibration block
// recorded live (`spikeflow run --calibration-block`): what `spikeflow calibrate --recording`
// trains on. Both are on the device clock, the clock of the spikes' t_ns.
//
// Behaviour file formats (chosen by extension):
//   .csv               a header line `t_s,NAME,...` (first column exactly t_s: device time in
//                      seconds; then one column per behaviour dimension, e.g. t_s,vx,vy), then one
//                      row per sample: strictly ascending t_s, finite numbers. Lines starting
//                      with '#' and empty lines are skipped.
//   .sfs / .mat / .nwb a session file: its behaviour series (its spikes are ignored).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "replay/recording_file.h"
#include "replay/session.h"

namespace spikeflow::replay {

struct BehaviorSeries {
  std::vector<std::string> names;  ///< one per dimension, e.g. {"vx", "vy"}
  std::vector<int64_t> t_ns;       ///< device ns, strictly ascending
  std::vector<float> values;       ///< t_ns.size() x names.size(), row-major
};

/// Throws std::runtime_error, one line naming the file (and the line for a CSV): missing,
/// empty, bad header, a non-number, a non-finite value, a row with the wrong number of columns,
/// times not strictly ascending, fewer than two samples.
BehaviorSeries read_behavior_file(const std::string& path);

/// Writes a CSV in the format above (the round trip of read_behavior_file), atomically.
void write_behavior_csv(const BehaviorSeries& b, const std::string& path);

/// The behaviour series of a session.
BehaviorSeries behavior_of(const Session& s);

/// A continuous session (no trials) from a recording's spikes and a behaviour series: units are
/// the distinct (channel, unit) keys of the recorded events (sorted), the extent runs from the
/// first to just after the last recorded spike, and the behaviour is cut to that extent. Tick
/// markers and empty packets are skipped. Throws std::runtime_error, one line naming the files,
/// when the recording has no spikes, or when the behaviour does not cover the recording's spikes
/// to within `slack_ns` at either end (no overlap at all: it says the clocks may differ).
Session session_from_recording(const Recording& rec, const std::string& recording_path,
                               const BehaviorSeries& behavior, const std::string& behavior_path,
                               int64_t slack_ns);

}  // namespace spikeflow::replay
