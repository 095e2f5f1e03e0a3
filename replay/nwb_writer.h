// Exporting a live run's recording (replay/recording_file.h) as a Neurodata Without Borders 2.x
// file through libhdf5's C API, laid out as pynwb writes it (NWB core schema 2.7.0, hdmf-common
// 1.x: github.com/NeurodataWithoutBorders/nwb-schema core/nwb.file.yaml, nwb.base.yaml,
// nwb.ecephys.yaml, nwb.misc.yaml), so that pynwb / h5py users find what they expect and
// `spikeflow replay -s run.nwb` (replay/nwb_session_reader.h) reads it back:
//
//   /                                    NWBFile: nwb_version, identifier, session_description,
//                                        session_start_time, timestamps_reference_time,
//                                        file_create_date
//   /general/data_collection             the run's config (YAML text)
//   /general/notes                       the model's description and checkpoint identity
//   /general/devices/spikeflow_device    Device
//   /general/extracellular_ephys/channels            ElectrodeGroup (all channels)
//   /general/extracellular_ephys/electrodes          DynamicTable: row c = device channel c
//   /units                               Units: spike_times (+ _index), electrodes (row = channel),
//                                        unit (the device's sorted-unit code), id
//   /processing/spikeflow/predictions    TimeSeries: T x D, timestamps = chunk end, device clock
//   (s) /processing/spikeflow/prediction_timing  DynamicTable: per prediction seq, chunk bounds,
//                                        flags, token count and every timing field (host clock, ns)
//   /processing/behavior/Behavior/<name> TimeSeries (with a session): behaviour, T x D
//   /intervals/trials                    TimeIntervals (with a session): start/stop time, condition
//   /intervals/epochs                    TimeIntervals, one row tagged "spikeflow_run": the run's
//                                        extent on the device clock (first chunk start, last
//                                        device time seen), which the reader's session extent
//                                        honours, so a replay of the file closes the same chunks
//
// Every group and table column carries neurodata_type, namespace and a UUID4 object_id.
// Times: device-clock nanoseconds -> seconds as t_ns / 1e9 in float64 (the reader's llround(t *
// 1e9) gives back the same ns for any time below ~100 days). Host-clock timing fields stay integer
// ns. Thread contract: libhdf5 (Debian's serial build) is not thread-safe; one HDF5 user per
// process at a time.
#pragma once

#include <cstddef>
#include <string>

#include "replay/recording_file.h"
#include "replay/session.h"

namespace spikeflow::replay {

struct NwbWriteOptions {
  std::string identifier;           ///< NWBFile identifier; empty = a fresh UUID4
  std::string session_description;  ///< empty = "spikeflow live run <recording path>"
  std::string source;               ///< the recording's path (named in descriptions)
  std::string software_version;     ///< e.g. "spikeflow 0.1.0"
  /// Behaviour TimeSeries name under /processing/behavior (the reader's default is "hand_vel").
  std::string behavior_name = "hand_vel";
};

/// What was written, and what will not read back as it was.
struct NwbWriteStats {
  size_t units = 0;  ///< rows of /units (the unit map first, then units seen only in events)
  size_t unmapped_units = 0;  ///< of them, keys not in the recording's unit map
  size_t spikes = 0;
  size_t electrodes = 0;  ///< rows of the electrodes table (highest channel + 1)
  size_t predictions = 0;
  size_t behavior_samples = 0;
  size_t trials = 0;
  size_t epochs = 0;          ///< 1 when the run's extent was written (0: no spikes, no chunks)
  int64_t run_start_ns = 0;   ///< that extent, device clock
  int64_t run_stop_ns = 0;
  /// Units whose code the reader will number differently: it numbers the units of a channel
  /// 1, 2, ... in table order, so only codes 1..k in order round-trip.
  size_t renumbered_units = 0;
};

/// Writes (truncates) `path`. session: optional behaviour and trials (and its units' spikes are
/// NOT used: spikes come from the recording's events). Throws std::runtime_error
/// "<path>: <hdf5 object>: <problem>" on any libhdf5 failure, or when a session's behaviour has
/// more columns than it names.
NwbWriteStats write_nwb_recording(const std::string& path, const Recording& recording,
                                  const Session* session,
                                  const NwbWriteOptions& options = NwbWriteOptions{});

}  // namespace spikeflow::replay
