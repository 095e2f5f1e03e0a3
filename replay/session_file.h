// Reading and writing sessions in spikeflow's own session file (.sfs): a small, versioned,
// little-endian binary layout documented in the README ("Session file"). Written by
// `spikeflow synth`; read by send / train / eval / replay.
#pragma once

#include <string>

#include "replay/nwb_session_reader.h"
#include "replay/session.h"

namespace spikeflow::replay {

/// Writes atomically (temp file + rename). Throws std::runtime_error naming the file.
void write_session_file(const Session& session, const std::string& path);

/// Throws std::runtime_error naming the file and the problem (missing, wrong magic, truncated,
/// sizes that disagree, invariant broken).
Session read_session_file(const std::string& path);

/// Reads any supported session format, chosen by content/extension (.sfs now; .mat, .nwb later).
Session load_session(const std::string& path);
/// As above; an NWB file is read with nwb (behaviour series, velocity derivation).
Session load_session(const std::string& path, const NwbReadOptions& nwb);

}  // namespace spikeflow::replay
