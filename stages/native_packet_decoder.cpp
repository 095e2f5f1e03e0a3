#include "stages/native_packet_decoder.h"

#include <cstring>

namespace spikeflow::stages {

namespace {

template <typename T>
T get_le(const uint8_t* p) {
  using U = std::make_unsigned_t<T>;
  U u = 0;
  for (size_t i = 0; i < sizeof(T); ++i) u |= static_cast<U>(static_cast<U>(p[i]) << (8 * i));
  return static_cast<T>(u);
}

}  // namespace

uint64_t IngestStats::packets_dropped() const {
  uint64_t n = packets_duplicate + format_packets_dropped();
  for (auto v : packet_drops) n += v;
  return n;
}

uint64_t IngestStats::events_dropped() const {
  uint64_t n = format_events_dropped();
  for (auto v : event_drops) n += v;
  return n;
}

void IngestStats::add(const IngestStats& o) {
  packets_accepted += o.packets_accepted;
  events_accepted += o.events_accepted;
  heartbeats += o.heartbeats;
  for (size_t i = 0; i < packet_drops.size(); ++i) packet_drops[i] += o.packet_drops[i];
  for (size_t i = 0; i < event_drops.size(); ++i) event_drops[i] += o.event_drops[i];
  packets_lost += o.packets_lost;
  packets_duplicate += o.packets_duplicate;
  packets_reordered += o.packets_reordered;
  stream_restarts += o.stream_restarts;
  for (size_t i = 0; i < format_packet_drops.size(); ++i) format_packet_drops[i] += o.format_packet_drops[i];
  for (size_t i = 0; i < format_event_drops.size(); ++i) format_event_drops[i] += o.format_event_drops[i];
  packets_skipped += o.packets_skipped;
  clock_wraps += o.clock_wraps;
  resync_bytes += o.resync_bytes;
  connections += o.connections;
  disconnects += o.disconnects;
}

bool NativePacketDecoder::decode(std::span<const uint8_t> d, int64_t arrival_host_ns,
                                 core::EventBatch& out) {
  auto drop = [&](PacketDrop r) {
    ++stats_.packet_drops[static_cast<size_t>(r)];
    return false;
  };
  if (d.size() < kNativeHeaderBytes) return drop(PacketDrop::kTruncatedHeader);
  const uint8_t* p = d.data();
  if (get_le<uint32_t>(p) != kNativeMagic) return drop(PacketDrop::kBadMagic);
  if (get_le<uint16_t>(p + 4) != kNativeVersion) return drop(PacketDrop::kBadVersion);
  if (get_le<uint16_t>(p + 6) != kNativeHeaderBytes) return drop(PacketDrop::kBadHeaderSize);
  NativePacketHeader h;
  h.stream_id = get_le<uint32_t>(p + 8);
  h.event_count = get_le<uint32_t>(p + 12);
  h.sequence = get_le<uint64_t>(p + 16);
  h.device_time_ns = get_le<int64_t>(p + 24);
  if (h.event_count > kMaxEventsPerDatagram) return drop(PacketDrop::kOversized);
  if (d.size() != kNativeHeaderBytes + static_cast<size_t>(h.event_count) * kNativeEventBytes) {
    return drop(PacketDrop::kLengthMismatch);
  }
  if (h.device_time_ns < 0) return drop(PacketDrop::kBadPacketTime);
  if (!track_sequence(h.stream_id, h.sequence)) {
    ++stats_.packets_duplicate;
    return false;
  }

  out.arrival_host_ns = arrival_host_ns;
  out.device_time_ns = h.device_time_ns;
  out.events.clear();
  const uint8_t* e = p + kNativeHeaderBytes;
  for (uint32_t i = 0; i < h.event_count; ++i, e += kNativeEventBytes) {
    core::SpikeEvent ev;
    ev.t_ns = get_le<int64_t>(e);
    ev.channel = get_le<uint32_t>(e + 8);
    ev.unit = get_le<uint16_t>(e + 12);
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

bool NativePacketDecoder::track_sequence(uint32_t stream_id, uint64_t sequence) {
  auto [it, inserted] = streams_.try_emplace(stream_id);
  StreamState& s = it->second;
  if (inserted) {
    s.next_expected = sequence + 1;
    s.seen_mask = 1;
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
    return true;
  }
  const uint64_t age = s.next_expected - 1 - sequence;  // 0 = newest seen
  if (age >= 64) {
    // Far behind everything seen: the sender restarted its numbering. Start over rather than
    // drop the restarted stream for ever.
    ++stats_.stream_restarts;
    s.next_expected = sequence + 1;
    s.seen_mask = 1;
    return true;
  }
  const uint64_t bit = uint64_t{1} << age;
  if (s.seen_mask & bit) return false;
  s.seen_mask |= bit;
  // It was counted lost when the gap opened; it arrived after all, out of order.
  if (stats_.packets_lost > 0) --stats_.packets_lost;
  ++stats_.packets_reordered;
  return true;
}

}  // namespace spikeflow::stages
