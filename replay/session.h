// Session: one recorded (or synthesized) session in memory — units, spike times per unit,
// behaviour time series, trials — and the one way to walk it as a time-ordered spike stream.
// Produced by the readers (session_file, MAT, NWB) and the synthetic generator; consumed by
// `spikeflow send`, `spikeflow replay`, the dataset builder (training / evaluation) and eval.
// replay/ is the data side of replay (model, file formats, generator, scoring); the drivers that
// play sessions and recordings through the live graph are in pipeline/ (see replay/README.md).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/spike_event.h"
#include "core/unit_map.h"

namespace spikeflow::replay {

struct Trial {
  int64_t start_ns = 0;   ///< device time, inclusive
  int64_t end_ns = 0;     ///< device time, exclusive
  int32_t condition = 0;  ///< e.g. target index of a center-out reach
};

struct Session {
  std::vector<core::UnitKey> units;                  ///< unit i's (channel, unit code)
  std::vector<std::vector<int64_t>> spike_times_ns;  ///< per unit, ascending, device ns
  std::vector<std::string> behavior_names;           ///< e.g. {"vx", "vy"} (cm/s)
  std::vector<int64_t> behavior_t_ns;                ///< sample times, strictly ascending
  std::vector<float> behavior;  ///< behavior_t_ns.size() x behavior_names.size(), row-major
  std::vector<Trial> trials;    ///< ascending, non-overlapping; may be empty (continuous data)
  int64_t start_ns = 0;         ///< session extent, device ns (inclusive)
  int64_t end_ns = 0;           ///< (exclusive)

  size_t num_units() const { return units.size(); }
  size_t num_spikes() const;
  int behavior_dim() const { return static_cast<int>(behavior_names.size()); }

  /// Checks every invariant above and throws std::runtime_error listing every problem found
  /// (not just the first), prefixed with `what` (e.g. the file name).
  void validate(const std::string& what) const;
};

/// All spikes with from_ns <= t < to_ns as one time-ordered stream (ties broken by unit index).
std::vector<core::SpikeEvent> merged_events(const Session& s, int64_t from_ns, int64_t to_ns);

/// One spike of a merged stream, naming its unit by session index (units[unit_index]).
struct IndexedSpike {
  int64_t t_ns = 0;         ///< device ns
  uint32_t unit_index = 0;  ///< index into Session::units
};

/// Same stream and order as merged_events, with session unit indices instead of keys (what the
/// dataset builder needs). Pure function; safe to call concurrently on a const Session.
std::vector<IndexedSpike> merged_indexed_spikes(const Session& s, int64_t from_ns, int64_t to_ns);

/// The device time that splits the session into a first `fraction` for training and the rest
/// for testing: the start of trial round(fraction * n_trials) when there are trials, else
/// start + fraction * duration, rounded down to a multiple of width_ns.
int64_t split_time_ns(const Session& s, double fraction, int64_t width_ns);

}  // namespace spikeflow::replay
