// SpikeEvent: one spike as the acquisition system reports it.
// Produced by ingest's wire-format decoders (stages::NativePacketDecoder,
// stages::BlackrockPacketDecoder, stages::IntanSpikeStreamDecoder) and by replay
// (replay::merged_events over a Session); consumed by stages::Binner.
#pragma once

#include <cstdint>

namespace spikeflow::core {

/// One spike: device timestamp plus where it came from. Plain value, 16 bytes.
struct SpikeEvent {
  int64_t t_ns = 0;      ///< device clock, nanoseconds since the device's epoch
  uint32_t channel = 0;  ///< electrode / channel number as the device numbers it
  uint16_t unit = 0;     ///< sorted unit code on that channel (0 = unsorted)
  uint16_t reserved = 0;
};

}  // namespace spikeflow::core
