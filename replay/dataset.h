// Cutting a Session into a DecodingDataset: the same chunking (core/time.h) and tokenization as
// the live pipeline, with the behaviour at each chunk's centre as target (linear interpolation).
#pragma once

#include <cstdint>
#include <vector>

#include "core/decoding_dataset.h"
#include "replay/session.h"

namespace spikeflow::replay {

struct DatasetOptions {
  int64_t width_ns = 50'000'000;
  int64_t from_ns = INT64_MIN;  ///< first chunk is the one holding max(from_ns, session start)
  int64_t to_ns = INT64_MAX;    ///< chunks ending after min(to_ns, session end) are left out
  /// Model unit order; empty = the session's own order. Spikes of units not in it are dropped
  /// (counted in dropped_spikes).
  std::vector<core::UnitKey> unit_order;
};

struct DatasetStats {
  size_t dropped_spikes = 0;  ///< spikes of units not in unit_order
};

core::DecodingDataset build_dataset(const Session& session, const DatasetOptions& options,
                                    DatasetStats* stats = nullptr);

}  // namespace spikeflow::replay
