// NativeStreamFramer: spikeflow's native packet format (stages/native_packet.h) carried over a
// TCP byte stream. Each frame is
//
//   offset size type  field
//   0      4    u32   length L, little-endian; 1 <= L <= kMaxUdpPayload
//   4      L          one native packet, exactly the bytes of a native UDP datagram
//
// Frames may be split anywhere across TCP reads; a frame's bytes are gathered in a buffer
// allocated once (kMaxUdpPayload) and decoded by a NativePacketDecoder, so malformed packets,
// sequence gaps and duplicates are counted exactly as for UDP. A length of 0 or above
// kMaxUdpPayload is a framing error (FormatPacketDrop::kFramingError): a length-prefixed stream
// carries no marker to resynchronise on, so the framer becomes broken() and ignores further
// input until reset(); the pipeline drops the connection.
//
// Producer: native senders over TCP (encode_native_frame builds a frame). Consumer: pipeline TCP
// ingest, one framer per connection, owned and called by its ingest thread; stats() readable by
// that thread only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/event_batch.h"
#include "stages/native_packet.h"
#include "stages/native_packet_decoder.h"

namespace spikeflow::stages {

constexpr size_t kNativeFrameLengthBytes = 4;

/// Appends one frame (length prefix + packet) to out.
void encode_native_frame(const NativePacketHeader& header, std::span<const core::SpikeEvent> events,
                         std::vector<uint8_t>& out);

class NativeStreamFramer {
 public:
  /// Receives each accepted packet's batch; the batch is reused after the call returns. Must
  /// not block.
  using Sink = std::function<void(core::EventBatch&)>;

  NativeStreamFramer();

  /// Consumes the bytes of one TCP read. Every frame completed by them is decoded; each packet
  /// the decoder accepts is passed to sink (arrival_host_ns = this read's arrival). Returns the
  /// number of batches passed. On a framing error the framer is broken from that point: the rest
  /// of bytes and every later call are ignored (returns what it passed before the error).
  /// Never throws (unless sink does); no allocation.
  size_t feed(std::span<const uint8_t> bytes, int64_t arrival_host_ns, const Sink& sink);

  /// True after a framing error: drop the connection, then reset() before reusing the framer.
  bool broken() const { return broken_; }

  /// A new connection: forgets the partial frame and the broken state. Counters and the
  /// per-stream sequence tracking are kept (a reconnecting sender continues its numbering;
  /// a restarted one is recognised as a stream restart).
  void reset();

  /// The decoder's counters plus format_packet_drops[kFramingError].
  const IngestStats& stats() const { return stats_; }

 private:
  /// Decodes one complete packet and passes an accepted batch on; returns 1 if passed.
  size_t deliver(std::span<const uint8_t> packet, int64_t arrival_host_ns, const Sink& sink);
  void sync_stats();

  NativePacketDecoder decoder_;
  core::EventBatch batch_;
  std::vector<uint8_t> frame_;  ///< gathered bytes of the current frame (capacity fixed)
  std::array<uint8_t, kNativeFrameLengthBytes> length_bytes_{};  ///< a prefix split across reads
  size_t length_have_ = 0;   ///< length-prefix bytes gathered so far
  size_t frame_length_ = 0;  ///< L of the current frame; 0 = reading the prefix
  bool broken_ = false;
  uint64_t framing_errors_ = 0;
  IngestStats stats_;
};

}  // namespace spikeflow::stages
