#include "stages/native_packet_decoder.h"

#include "core/byte_io.h"

namespace spikeflow::stages {

using core::load_le;

bool NativePacketDecoder::decode(std::span<const uint8_t> d, int64_t arrival_host_ns,
                                 core::EventBatch& out) {
  auto drop = [&](PacketDrop r) {
    ++stats_.packet_drops[static_cast<size_t>(r)];
    return false;
  };
  if (d.size() < kNativeHeaderBytes) return drop(PacketDrop::kTruncatedHeader);
  const uint8_t* p = d.data();
  if (load_le<uint32_t>(p) != kNativeMagic) return drop(PacketDrop::kBadMagic);
  if (load_le<uint16_t>(p + 4) != kNativeVersion) return drop(PacketDrop::kBadVersion);
  if (load_le<uint16_t>(p + 6) != kNativeHeaderBytes) return drop(PacketDrop::kBadHeaderSize);
  NativePacketHeader h;
  h.stream_id = load_le<uint32_t>(p + 8);
  h.event_count = load_le<uint32_t>(p + 12);
  h.sequence = load_le<uint64_t>(p + 16);
  h.device_time_ns = load_le<int64_t>(p + 24);
  if (h.event_count > kMaxEventsPerDatagram) return drop(PacketDrop::kOversized);
  if (d.size() != kNativeHeaderBytes + static_cast<size_t>(h.event_count) * kNativeEventBytes) {
    return drop(PacketDrop::kLengthMismatch);
  }
  if (h.device_time_ns < 0) return drop(PacketDrop::kBadPacketTime);
  if (!track_sequence(h.stream_id, h.sequence, h.device_time_ns)) {
    ++stats_.packets_duplicate;
    return false;
  }

  out.arrival_host_ns = arrival_host_ns;
  out.device_time_ns = h.device_time_ns;
  out.events.clear();
  const uint8_t* e = p + kNativeHeaderBytes;
  for (uint32_t i = 0; i < h.event_count; ++i, e += kNativeEventBytes) {
    core::SpikeEvent ev;
    ev.t_ns = load_le<int64_t>(e);
    ev.channel = load_le<uint32_t>(e + 8);
    ev.unit = load_le<uint16_t>(e + 12);
    if (ev.t_ns < 0) {
      ++stats_.event_drops[static_cast<size_t>(EventDrop::kNegativeTime)];
      continue;
    }
    if (ev.t_ns > h.device_time_ns) {
      ++stats_.event_drops[static_cast<size_t>(EventDrop::kAfterPacketTime)];
      continue;
    }
    out.events.push_back(ev);
  }
  ++stats_.packets_accepted;
  if (h.event_count == 0) ++stats_.heartbeats;
  stats_.events_accepted += out.events.size();
  return true;
}

void NativePacketDecoder::restart(StreamState& s, uint64_t sequence, int64_t device_time_ns) {
  ++stats_.stream_restarts;
  s.next_expected = sequence + 1;
  s.seen_mask = 1;
  s.device_time[sequence % 64] = device_time_ns;
}

bool NativePacketDecoder::track_sequence(uint32_t stream_id, uint64_t sequence,
                                         int64_t device_time_ns) {
  auto [it, inserted] = streams_.try_emplace(stream_id);
  StreamState& s = it->second;
  if (inserted) {
    s.next_expected = sequence + 1;
    s.seen_mask = 1;
    s.device_time[sequence % 64] = device_time_ns;
    return true;
  }
  // Compared modulo 2^64, as the sequence wraps: up to 2^63 ahead of the newest seen is new, the
  // rest is behind (a sequence of UINT64_MAX makes next_expected wrap to 0; an ordinary >= would
  // then take the same packet again for a new one, 2^64 - 1 packets ahead).
  const uint64_t ahead = sequence - (s.next_expected - 1);
  if (ahead != 0 && ahead <= (uint64_t{1} << 63)) {
    const uint64_t gap = ahead - 1;  // packets skipped
    stats_.packets_lost += gap;
    // Shift the window of seen sequence numbers: bit 0 becomes `sequence` itself.
    const uint64_t shift = gap + 1;
    s.seen_mask = shift >= 64 ? 0 : (s.seen_mask << shift);
    s.seen_mask |= 1;  // bit 0 = sequence (the newest)
    s.next_expected = sequence + 1;
    s.device_time[sequence % 64] = device_time_ns;
    return true;
  }
  const uint64_t age = s.next_expected - 1 - sequence;  // 0 = newest seen
  if (age >= 64) {
    // Far behind everything seen: the sender restarted its numbering. Start over rather than
    // drop the restarted stream for ever.
    restart(s, sequence, device_time_ns);
    return true;
  }
  const uint64_t bit = uint64_t{1} << age;
  if (s.seen_mask & bit) {
    if (s.device_time[sequence % 64] == device_time_ns) return false;  // the same packet again
    // A number seen lately but another packet: the sender restarted soon after an earlier
    // start (fewer than 64 packets ago). Without this its first packets would be taken for
    // duplicates and their spikes lost.
    restart(s, sequence, device_time_ns);
    return true;
  }
  s.seen_mask |= bit;
  s.device_time[sequence % 64] = device_time_ns;
  // It was counted lost when the gap opened; it arrived after all, out of order.
  if (stats_.packets_lost > 0) --stats_.packets_lost;
  ++stats_.packets_reordered;
  return true;
}

}  // namespace spikeflow::stages
