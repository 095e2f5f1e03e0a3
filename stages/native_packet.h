// spikeflow's native UDP/TCP packet format, version 1 (documented byte by byte in README.md,
// "Native packet format"). All fields little-endian.
//
//   offset size type  field
//   0      4    u32   magic = 0x4B465053 (bytes 'S' 'P' 'F' 'K')
//   4      2    u16   version = 1
//   6      2    u16   header_bytes = 32
//   8      4    u32   stream_id      (sender identity; sequence numbers are per stream)
//   12     4    u32   event_count    (0 = heartbeat)
//   16     8    u64   sequence       (per stream, +1 per packet)
//   24     8    i64   device_time_ns (sender's device clock when sent; every event in this and
//                                     earlier packets has t_ns <= device_time_ns)
//   32     16*n       events: i64 t_ns, u32 channel, u16 unit, u16 reserved (= 0)
//
// Producer: acquisition bridges and `spikeflow send`. Consumer: stages::NativePacketDecoder (its
// drop reasons and counters: stages/ingest_stats.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "core/spike_event.h"

namespace spikeflow::stages {

constexpr uint32_t kNativeMagic = 0x4B465053u;
constexpr uint16_t kNativeVersion = 1;
constexpr size_t kNativeHeaderBytes = 32;
constexpr size_t kNativeEventBytes = 16;
constexpr size_t kMaxUdpPayload = 65507;
constexpr size_t kMaxEventsPerDatagram = (kMaxUdpPayload - kNativeHeaderBytes) / kNativeEventBytes;

struct NativePacketHeader {
  uint32_t stream_id = 0;
  uint32_t event_count = 0;
  uint64_t sequence = 0;
  int64_t device_time_ns = 0;
};

/// Appends the encoded packet to out. Used by senders and tests.
void encode_native_packet(const NativePacketHeader& header,
                          std::span<const core::SpikeEvent> events, std::vector<uint8_t>& out);

}  // namespace spikeflow::stages
