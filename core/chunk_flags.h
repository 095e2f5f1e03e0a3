// Bit flags carried by a chunk from the binner to the published prediction.
#pragma once

#include <cstdint>

namespace spikeflow::core {

enum class ChunkFlag : uint32_t {
  kEmpty = 1u << 0,             ///< no spike tokens in the chunk
  kClosedByDeadline = 1u << 1,  ///< closed by the host-time deadline, not by the event watermark
  kHadLateEvents = 1u << 2,   ///< events for this chunk arrived after it closed (counted, dropped)
  kCatchUp = 1u << 3,         ///< decoded in a batched catch-up call
  kOutputRepaired = 1u << 4,  ///< the model produced a non-finite value; last good output sent
  kEndOfStream = 1u << 5,     ///< flushed at shutdown / end of stream
  kUnknownUnits = 1u << 6,    ///< some events had units not in the unit map (counted, dropped)
  kBacklogShed = 1u << 7,     ///< decoder backlog over its bound: tokens shed, chunk decoded empty
  kNewEpoch = 1u << 8,        ///< first chunk of a new device-clock epoch (clock jump or device
                              ///< restart); the decoder's recurrent state was reset before it
  kNoSource = 1u << 9,        ///< closed by deadline with no packet (not even a heartbeat) from any
                        ///< source for binner no_source_timeout: "no input", not "no movement"
};

constexpr uint32_t operator|(ChunkFlag a, ChunkFlag b) {
  return static_cast<uint32_t>(a) | static_cast<uint32_t>(b);
}
constexpr bool has_flag(uint32_t flags, ChunkFlag f) {
  return (flags & static_cast<uint32_t>(f)) != 0;
}
constexpr void set_flag(uint32_t& flags, ChunkFlag f) { flags |= static_cast<uint32_t>(f); }

}  // namespace spikeflow::core
