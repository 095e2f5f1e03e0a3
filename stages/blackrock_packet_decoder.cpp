#include "stages/blackrock_packet_decoder.h"

#include <algorithm>
#include <cctype>
#include <string_view>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "core/byte_io.h"

namespace spikeflow::stages {

using core::load_le;

std::vector<std::string> BlackrockOptions::validate() const {
  std::vector<std::string> errors;
  if (protocol != BlackrockProtocol::kV3_11 && protocol != BlackrockProtocol::kV4_0 &&
      protocol != BlackrockProtocol::kV4_1) {
    errors.push_back(
        fmt::format("blackrock.protocol: unknown value {}", static_cast<int>(protocol)));
  }
  if (sample_rate_hz < 1 || sample_rate_hz > 1'000'000'000) {
    errors.push_back(
        fmt::format("blackrock.sample_rate_hz = {}: must be in [1, 1e9] Hz", sample_rate_hz));
  }
  if (time_units == BlackrockTimeUnits::kNs && protocol == BlackrockProtocol::kV3_11) {
    errors.push_back(
        "blackrock.time_units: ns applies to protocol 4.x only (3.11 time is always ticks)");
  }
  if (fe_channel_count < 1 || fe_channel_count >= kBlackrockConfigChannel) {
    errors.push_back(
        fmt::format("blackrock.fe_channel_count = {}: must be in [1, 32767]", fe_channel_count));
  }
  return errors;
}

namespace {

const BlackrockOptions& checked(const BlackrockOptions& options) {
  const auto errors = options.validate();
  if (!errors.empty()) {
    std::string message = "invalid Blackrock decoder options:";
    for (const auto& e : errors) message += "\n  " + e;
    throw std::invalid_argument(message);
  }
  return options;
}

struct Header {
  uint64_t time = 0;
  uint16_t chid = 0;
  uint16_t type = 0;
  uint16_t dlen = 0;
  uint8_t instrument = 0;
};

/// Reads the header at p (blackrock_header_bytes(protocol) readable bytes); layouts in
/// stages/blackrock_packet.h.
Header read_header(BlackrockProtocol protocol, const uint8_t* p) {
  Header h;
  switch (protocol) {
    case BlackrockProtocol::kV3_11:
      h.time = load_le<uint32_t>(p);
      h.chid = load_le<uint16_t>(p + 4);
      h.type = p[6];
      h.dlen = p[7];
      break;
    case BlackrockProtocol::kV4_0:
      h.time = load_le<uint64_t>(p);
      h.chid = load_le<uint16_t>(p + 8);
      h.type = p[10];
      h.dlen = load_le<uint16_t>(p + 11);
      h.instrument = p[13];
      break;
    case BlackrockProtocol::kV4_1:
      h.time = load_le<uint64_t>(p);
      h.chid = load_le<uint16_t>(p + 8);
      h.type = load_le<uint16_t>(p + 10);
      h.dlen = load_le<uint16_t>(p + 12);
      h.instrument = p[14];
      break;
  }
  return h;
}

/// A packet shaped like cbPKT_SPK: dlen cbPKTDLEN_SPKSHORT..cbPKTDLEN_SPK, unit 0..5 or noise.
bool spike_shaped(const Header& h) {
  return h.dlen >= kBlackrockSpikeMinDlen && h.dlen <= kBlackrockSpikeMaxDlen &&
         (h.type <= kBlackrockMaxUnit || h.type == kBlackrockUnitNoise);
}

/// ident (not necessarily NUL-terminated) contains "gemini", case-insensitive: CereLink's test
/// for a nanosecond clock (src/cbdev/src/device_session.cpp, cbPKTTYPE_PROCREP).
bool ident_is_gemini(const uint8_t* ident, size_t n) {
  static constexpr std::string_view kNeedle = "gemini";
  size_t len = 0;
  while (len < n && ident[len] != 0) ++len;
  for (size_t i = 0; i + kNeedle.size() <= len; ++i) {
    size_t j = 0;
    while (j < kNeedle.size() && std::tolower(ident[i + j]) == kNeedle[j]) ++j;
    if (j == kNeedle.size()) return true;
  }
  return false;
}

}  // namespace

BlackrockPacketDecoder::BlackrockPacketDecoder(const BlackrockOptions& options)
    : options_(checked(options)), header_bytes_(blackrock_header_bytes(options.protocol)) {}

void BlackrockPacketDecoder::observe_system_packet(uint16_t type, uint8_t instrument,
                                                   const uint8_t* payload, size_t bytes) {
  if (options_.time_units != BlackrockTimeUnits::kAuto ||
      options_.protocol == BlackrockProtocol::kV3_11)
    return;
  auto& clock = instruments_[instrument];
  if ((type & 0xF0) == kBlackrockTypeSysRep && bytes >= 4) {
    const auto sysfreq = load_le<uint32_t>(payload);  // cbPKT_SYSINFO.sysfreq
    if (sysfreq > 0 && sysfreq <= 1'000'000'000) clock.rate_hz = sysfreq;
  } else if (type == kBlackrockTypeProcRep &&
             bytes >= kBlackrockProcIdentOffset + kBlackrockIdentBytes) {
    clock.ticks = !ident_is_gemini(payload + kBlackrockProcIdentOffset, kBlackrockIdentBytes);
  }
}

int64_t BlackrockPacketDecoder::packet_time_ns(uint64_t raw_time, uint8_t instrument) {
  if (options_.protocol == BlackrockProtocol::kV3_11) {
    bool wrapped = false;
    const int64_t ticks = clock_.unwrap(static_cast<uint32_t>(raw_time), wrapped);
    if (wrapped) ++stats_.clock_wraps;
    return ticks_fit_ns(ticks, options_.sample_rate_hz)
               ? ticks_to_ns(ticks, options_.sample_rate_hz)
               : -1;
  }
  if (raw_time > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return -1;
  const auto t = static_cast<int64_t>(raw_time);
  int64_t rate = options_.sample_rate_hz;
  switch (options_.time_units) {
    case BlackrockTimeUnits::kNs:
      return t;
    case BlackrockTimeUnits::kTicks:
      break;
    case BlackrockTimeUnits::kAuto: {
      const auto& clock = instruments_[instrument];
      if (!clock.ticks) return t;
      if (clock.rate_hz > 0) rate = clock.rate_hz;
      break;
    }
  }
  // ns of a tick count this large would overflow int64: not a real device time.
  if (!ticks_fit_ns(t, rate)) return -1;
  return ticks_to_ns(t, rate);
}

bool BlackrockPacketDecoder::decode(std::span<const uint8_t> d, int64_t arrival_host_ns,
                                    core::EventBatch& out) {
  out.arrival_host_ns = arrival_host_ns;
  out.device_time_ns = -1;
  out.events.clear();
  if (d.empty()) {
    ++stats_.packet_drops[static_cast<size_t>(PacketDrop::kTruncatedHeader)];
    return false;
  }
  auto format_drop = [&](FormatPacketDrop r) {
    ++stats_.format_packet_drops[static_cast<size_t>(r)];
  };
  auto event_drop = [&](FormatEventDrop r) { ++stats_.format_event_drops[static_cast<size_t>(r)]; };

  int64_t max_time_ns = -1;
  bool any_time = false;
  size_t offset = 0;
  while (offset < d.size()) {
    const size_t left = d.size() - offset;
    if (left < header_bytes_) {
      format_drop(FormatPacketDrop::kTruncatedPacket);
      break;
    }
    const uint8_t* p = d.data() + offset;
    const Header h = read_header(options_.protocol, p);
    const size_t payload_bytes = size_t{4} * h.dlen;
    if (payload_bytes > left - header_bytes_) {
      // The length is wrong, so nothing after this point can be framed: drop the rest.
      format_drop(FormatPacketDrop::kTruncatedPacket);
      break;
    }
    const uint8_t* payload = p + header_bytes_;
    offset += header_bytes_ + payload_bytes;
    const uint8_t instrument = options_.protocol == BlackrockProtocol::kV3_11 ? 0 : h.instrument;

    const bool system = (h.chid & kBlackrockConfigChannel) != 0;
    const bool spike = !system && h.chid >= 1 && h.chid <= options_.fe_channel_count;
    if (spike && payload_bytes < kBlackrockSpikeFixedBytes) {
      format_drop(FormatPacketDrop::kBadSpikePacket);
      continue;
    }
    if (system) observe_system_packet(h.type, instrument, payload, payload_bytes);
    const int64_t t = packet_time_ns(h.time, instrument);
    if (t < 0) {
      ++stats_.packet_drops[static_cast<size_t>(PacketDrop::kBadPacketTime)];
      continue;
    }
    any_time = true;
    max_time_ns = std::max(max_time_ns, t);
    if (system) {
      if (h.type == kBlackrockTypeHeartbeat) ++stats_.heartbeats;
      continue;  // heartbeat, protocol monitor, configuration: clock only
    }
    if (!spike) {
      // Continuous sample groups (chid 0, type 1..6) and the other non-electrode channels carry
      // a time but no spike. A spike-shaped packet here is a spike we cannot key: counted lost.
      const bool group = h.chid == 0 && h.type >= 1 && h.type <= kBlackrockMaxGroup;
      if (!group && spike_shaped(h)) {
        event_drop(FormatEventDrop::kChannelOutOfRange);
      } else {
        ++stats_.packets_skipped;
      }
      continue;
    }

    if (h.type == kBlackrockUnitNoise) {
      event_drop(FormatEventDrop::kNoise);
    } else if (h.type > kBlackrockMaxUnit) {
      event_drop(FormatEventDrop::kUnknownUnit);
    } else {
      core::SpikeEvent ev;
      ev.t_ns = t;
      ev.channel = blackrock_channel_key(instrument, h.chid);
      ev.unit = h.type;
      out.events.push_back(ev);
    }
  }
  if (!any_time) return false;
  out.device_time_ns = max_time_ns;
  ++stats_.packets_accepted;
  stats_.events_accepted += out.events.size();
  return true;
}

}  // namespace spikeflow::stages
