#include "stages/native_stream_framer.h"

#include <algorithm>
#include <cstring>

#include "core/byte_io.h"

namespace spikeflow::stages {

using core::load_le;

void encode_native_frame(const NativePacketHeader& header, std::span<const core::SpikeEvent> events,
                         std::vector<uint8_t>& out) {
  core::ByteWriter w(out);
  const size_t at = w.size();
  w.write<uint32_t>(0);  // patched below, once the packet's size is known
  encode_native_packet(header, events, out);
  w.patch<uint32_t>(at, static_cast<uint32_t>(w.size() - at - kNativeFrameLengthBytes));
}

NativeStreamFramer::NativeStreamFramer() {
  frame_.reserve(kMaxUdpPayload);
  batch_.events.reserve(kMaxEventsPerDatagram);
}

void NativeStreamFramer::reset() {
  frame_.clear();
  length_have_ = 0;
  frame_length_ = 0;
  broken_ = false;
}

size_t NativeStreamFramer::feed(std::span<const uint8_t> bytes, int64_t arrival_host_ns,
                                const Sink& sink) {
  if (broken_) return 0;
  const uint8_t* p = bytes.data();
  const size_t n = bytes.size();
  size_t i = 0;
  size_t passed = 0;
  while (i < n) {
    if (frame_length_ == 0) {
      // Reading a length prefix, possibly split across reads.
      uint32_t length = 0;
      if (length_have_ == 0 && n - i >= kNativeFrameLengthBytes) {
        length = load_le<uint32_t>(p + i);
        i += kNativeFrameLengthBytes;
      } else {
        const size_t take = std::min(kNativeFrameLengthBytes - length_have_, n - i);
        std::memcpy(length_bytes_.data() + length_have_, p + i, take);
        length_have_ += take;
        i += take;
        if (length_have_ < kNativeFrameLengthBytes) break;
        length = load_le<uint32_t>(length_bytes_.data());
        length_have_ = 0;
      }
      if (length == 0 || length > kMaxUdpPayload) {
        broken_ = true;
        ++framing_errors_;
        break;
      }
      frame_length_ = length;
      frame_.clear();
      continue;
    }
    const size_t need = frame_length_ - frame_.size();
    if (frame_.empty() && n - i >= need) {
      // The whole frame is in this read: decode it in place.
      passed += deliver(bytes.subspan(i, need), arrival_host_ns, sink);
      i += need;
      frame_length_ = 0;
      continue;
    }
    const size_t take = std::min(need, n - i);
    frame_.insert(frame_.end(), p + i, p + i + take);  // within the reserved capacity
    i += take;
    if (frame_.size() == frame_length_) {
      passed += deliver(frame_, arrival_host_ns, sink);
      frame_.clear();
      frame_length_ = 0;
    }
  }
  sync_stats();
  return passed;
}

size_t NativeStreamFramer::deliver(std::span<const uint8_t> packet, int64_t arrival_host_ns,
                                   const Sink& sink) {
  if (!decoder_.decode(packet, arrival_host_ns, batch_)) return 0;
  sink(batch_);
  return 1;
}

void NativeStreamFramer::sync_stats() {
  stats_ = decoder_.stats();
  stats_.format_packet_drops[static_cast<size_t>(FormatPacketDrop::kFramingError)] =
      framing_errors_;
}

}  // namespace spikeflow::stages
