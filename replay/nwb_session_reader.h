// Reading a Neurodata Without Borders (NWB 2.x) file into a Session through libhdf5's C API:
// sorted units, one behaviour TimeSeries and the trials table. Used by load_session for .nwb
// files (with default options) and by `spikeflow train / eval / replay` on public NWB datasets
// (e.g. DANDI's MC_Maze). Layout per the NWB 2.x core schema (nwb.org, "NWB:N format
// specification", Units / TimeSeries / TimeIntervals):
//   /units/spike_times         float seconds, all units concatenated
//   /units/spike_times_index   ragged index: exclusive end offset of each unit's spikes
//   /units/id                  one integer per unit
//   /units/electrodes          optional row of /general/extracellular_ephys/electrodes per unit
//                              (ragged with /units/electrodes_index when present)
//   <module>/.../<name>/data   T or T x D, scaled by its `conversion` (and `offset`) attributes
//   <module>/.../<name>/timestamps  T seconds, or starting_time (seconds) with attribute `rate`
//   /intervals/trials/start_time, stop_time [, <condition column>]
//   /intervals/epochs/start_time, stop_time   (optional: widen the session's extent)
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "replay/session.h"

namespace spikeflow::replay {

/// Where to find the behaviour and trials; the defaults fit NLB / DANDI reaching datasets.
struct NwbReadOptions {
  /// The behaviour series: a name searched for recursively under behavior_module (e.g.
  /// "hand_vel", "cursor_vel", or "position" for a SpatialSeries inside a Position /
  /// BehavioralTimeSeries container), or an absolute HDF5 path ("/processing/behavior/Position/
  /// hand"). Exactly one group of that name must exist; a container (no `data` of its own) holding
  /// exactly one series stands for that series. When it is missing, the error lists every series
  /// found with its neurodata_type. Empty = read no behaviour (behavior_dim() == 0).
  std::string behavior_name = "hand_vel";
  /// Derive velocity from the chosen series (for files that store only position): a causal
  /// backward difference v[i] = (x[i] - x[i-1]) / (t[i] - t[i-1]), v[0] = 0, then a causal
  /// first-order low-pass y[i] = y[i-1] + a (v[i] - y[i-1]), a = 1 - exp(-(t[i] - t[i-1]) / tau),
  /// tau = velocity_smoothing_ms (0 = no smoothing). Units: the series' units per second. Causal,
  /// so a live decoder trained on it sees nothing from the future. Columns: "vx", "vy", "vz".
  bool derive_velocity = false;
  double velocity_smoothing_ms = 20.0;
  std::string behavior_module = "/processing/behavior";  ///< HDF5 path of the ProcessingModule
  /// Names of the data columns; must have D entries when given. Empty = {"vx", "vy"} for D = 2,
  /// {"vx", "vy", "vz"} for D = 3, else "<behavior_name>" (D = 1) or "<behavior_name>_<i>".
  std::vector<std::string> behavior_names;
  /// TimeIntervals group of the trials. A missing group means no trials (continuous data).
  std::string trials_table = "/intervals/trials";
  /// Optional numeric column of the trials table holding each trial's condition (rounded to the
  /// nearest integer). Empty = every trial gets condition 0; named but missing = error.
  std::string condition_column;
  /// TimeIntervals group of the epochs: its rows widen the session's extent (a run's true start
  /// and stop, as `spikeflow export` writes them: replay/nwb_writer.h). Missing = no widening.
  std::string epochs_table = "/intervals/epochs";
};

/// What the reader found, including conditions worth a warning that are not errors.
struct NwbReadStats {
  size_t units = 0;
  size_t empty_units = 0;  ///< units with no spikes (kept in the session; warn about them)
  size_t spikes = 0;
  size_t units_resorted = 0;  ///< units whose spike times were not ascending in the file (sorted)
  size_t behavior_samples = 0;
  std::string behavior_path;      ///< HDF5 path of the series read
  bool behavior_derived = false;  ///< velocity derived from it (NwbReadOptions::derive_velocity)
  size_t trials = 0;
  size_t epochs = 0;  ///< rows of the epochs table (they widened the extent)
  bool channels_from_electrodes = false;  ///< false: channel = unit id (no /units/electrodes)
};

/// Reads the file. Times: seconds -> device ns, rounded to nearest (std::llround(t * 1e9)).
/// Units: channel = the unit's (first) electrodes-table row when /units/electrodes exists, else
/// the unit id; unit code = 1 + how many earlier units share that channel (so keys are unique).
/// Session extent: [earliest spike / behaviour sample / trial or epoch start, latest of them + 1 ns,
/// or the latest trial or epoch stop if later). A file from `spikeflow export` has one epoch, the
/// run's whole extent, so its session ends where the run did.
/// Throws std::runtime_error "<file>: <hdf5 path>: <problem>" for: a missing file or non-HDF5
/// file, a missing dataset, wrong rank or shape, a non-numeric dataset, a ragged index that is not
/// monotonic or runs past the end of its data, non-finite spike times, behaviour timestamps that
/// are not strictly increasing, NaN / inf in behaviour (with the count), a behaviour group that is
/// missing or ambiguous (listing the TimeSeries that exist), then Session::validate's problems.
/// Units without spikes are not an error: they are counted in stats->empty_units.
/// An NWB 1.x file (root dataset /nwb_version, or a root nwb_version attribute "1.*") is refused
/// with "<file>: NWB 1.x is not supported (...)".
/// Thread contract: libhdf5 (Debian's serial build) is not thread-safe; do not call this
/// concurrently with any other HDF5 user in the process (read_mat_session on v7.3 files included).
Session read_nwb_session(const std::string& path, const NwbReadOptions& opts = NwbReadOptions{},
                         NwbReadStats* stats = nullptr);

}  // namespace spikeflow::replay
