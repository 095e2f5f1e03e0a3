// EventBatch: the spikes of one received packet with its arrival time.
// Produced by ingest (pipeline/ transports via a stages decoder); consumed by stages::Binner.
#pragma once

#include <cstdint>
#include <vector>

#include "core/spike_event.h"

namespace spikeflow::core {

struct EventBatch {
  int64_t arrival_host_ns = 0;  ///< host_now_ns() when the packet was received
  int64_t device_time_ns = -1;  ///< sender's device time at send (watermark); -1 = unknown
  std::vector<SpikeEvent> events;
};

}  // namespace spikeflow::core
