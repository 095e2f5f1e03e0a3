#include "stages/intan_spike_stream.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <numeric>
#include <tuple>
#include <cstring>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "core/byte_io.h"

namespace spikeflow::stages {

using core::load_le;

namespace {

/// The magic's bytes in wire order.
const std::array<uint8_t, 4> kMagicBytes = [] {
  std::array<uint8_t, 4> b{};
  core::store_le<uint32_t>(b.data(), kIntanSpikeMagic);
  return b;
}();

/// True when the n (< 4) bytes at p could be the start of a magic.
bool is_magic_prefix(const uint8_t* p, size_t n) {
  return std::equal(p, p + n, kMagicBytes.begin());
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

}  // namespace

std::optional<uint32_t> intan_channel_from_name(std::span<const char, kIntanNameBytes> name) {
  const char port = name[0];
  if (port < 'A' || port >= static_cast<char>('A' + kIntanPorts)) return std::nullopt;
  if (name[1] != '-' || !is_digit(name[2]) || !is_digit(name[3]) || !is_digit(name[4])) {
    return std::nullopt;
  }
  const auto number =
      static_cast<uint32_t>((name[2] - '0') * 100 + (name[3] - '0') * 10 + (name[4] - '0'));
  if (number >= kIntanChannelsPerPort) return std::nullopt;
  return static_cast<uint32_t>(port - 'A') * kIntanChannelsPerPort + number;
}

std::array<char, kIntanNameBytes> intan_channel_name(uint32_t channel) {
  const uint32_t port = channel / kIntanChannelsPerPort;
  const uint32_t number = channel % kIntanChannelsPerPort;
  return {static_cast<char>('A' + port), '-', static_cast<char>('0' + number / 100),
          static_cast<char>('0' + number / 10 % 10), static_cast<char>('0' + number % 10)};
}

void encode_intan_spike(std::string_view name, uint32_t timestamp, uint8_t spike_id,
                        std::vector<uint8_t>& out) {
  core::ByteWriter w(out);
  w.write<uint32_t>(kIntanSpikeMagic);
  for (size_t i = 0; i < kIntanNameBytes; ++i) {
    w.write<uint8_t>(i < name.size() ? static_cast<uint8_t>(name[i]) : uint8_t{0});
  }
  w.write<uint32_t>(timestamp);
  w.write<uint8_t>(spike_id);
}

std::pair<int64_t, int64_t> intan_rate_fraction(double hz) {
  if (!(hz >= 1.0 && hz <= 1e9)) return {0, 0};
  for (int64_t q = 1; q <= 1000; ++q) {
    const double p = std::round(hz * static_cast<double>(q));
    if (std::abs(p / static_cast<double>(q) - hz) <= 1e-12 * hz) {
      const auto pi = static_cast<int64_t>(p);
      const int64_t g = std::gcd(pi, q);
      // ticks_to_ns(ticks * q, p) is exact only while p <= INT64_MAX / 1e9 (its remainder term
      // multiplies by 1e9): 10000000.001 Hz = 10000000001/1000 would overflow it.
      if (pi / g > kIntanMaxRateNumerator) return {0, 0};
      return {pi / g, q / g};
    }
  }
  return {0, 0};
}

int64_t intan_write_period_ns(int blocks_per_write, double sample_rate_hz) {
  if (blocks_per_write < 1 || !(sample_rate_hz > 0)) return 0;
  return static_cast<int64_t>(std::ceil(static_cast<double>(blocks_per_write) *
                                        kIntanFramesPerBlock * 1e9 / sample_rate_hz));
}

std::vector<std::string> IntanOptions::validate() const {
  std::vector<std::string> errors;
  if (!(sample_rate_hz >= 1 && sample_rate_hz <= 1'000'000'000)) {
    errors.push_back(fmt::format(
        "intan.sample_rate_hz = {}: required, must be in [1, 1e9] Hz (RHX: get sampleratehertz)",
        sample_rate_hz));
  } else if (intan_rate_fraction(sample_rate_hz).second == 0) {
    errors.push_back(
        fmt::format("intan.sample_rate_hz = {}: not a fraction p/q with q <= 1000 and p <= {} "
                    "(e.g. 30000, 10000/3 = 3333.3333333333)",
                    sample_rate_hz, kIntanMaxRateNumerator));
  }
  return errors;
}

namespace {

const IntanOptions& checked(const IntanOptions& options) {
  const auto errors = options.validate();
  if (!errors.empty()) {
    std::string message = "invalid Intan spike stream options:";
    for (const auto& e : errors) message += "\n  " + e;
    throw std::invalid_argument(message);
  }
  return options;
}

}  // namespace

IntanSpikeStreamDecoder::IntanSpikeStreamDecoder(const IntanOptions& options)
    : options_(checked(options)) {
  std::tie(rate_num_, rate_den_) = intan_rate_fraction(options_.sample_rate_hz);
}

void IntanSpikeStreamDecoder::reset() {
  clock_.reset();
  carry_len_ = 0;
  in_sync_ = true;
}

void IntanSpikeStreamDecoder::feed(std::span<const uint8_t> bytes, int64_t arrival_host_ns,
                                   core::EventBatch& out) {
  out.arrival_host_ns = arrival_host_ns;
  out.device_time_ns = -1;
  out.events.clear();
  const uint8_t* in = bytes.data();
  const size_t n = bytes.size();
  size_t i = 0;
  if (carry_len_ > 0) {
    // Finish the carried record on a small stack copy: the carry plus up to one record of new
    // bytes. Whatever of the new bytes this does not consume is consumed in place below.
    std::array<uint8_t, 2 * kIntanSpikeRecordBytes - 1> stage{};
    std::memcpy(stage.data(), carry_.data(), carry_len_);
    const size_t take = std::min(n, kIntanSpikeRecordBytes);
    if (take > 0) std::memcpy(stage.data() + carry_len_, in, take);
    const size_t total = carry_len_ + take;
    const size_t used = consume(stage.data(), total, out);
    if (used < carry_len_) {
      // Still short of a record: only possible when every new byte fitted on the stage.
      carry_len_ = total - used;
      std::memmove(carry_.data(), stage.data() + used, carry_len_);
      return;
    }
    i = used - carry_len_;
    carry_len_ = 0;
  }
  i += consume(in + i, n - i, out);
  carry_len_ = n - i;  // < 14 by consume's contract
  if (carry_len_ > 0) std::memcpy(carry_.data(), in + i, carry_len_);
}

size_t IntanSpikeStreamDecoder::consume(const uint8_t* p, size_t n, core::EventBatch& out) {
  size_t pos = 0;
  while (pos < n) {
    const size_t left = n - pos;
    if (left >= kMagicBytes.size()) {
      if (load_le<uint32_t>(p + pos) != kIntanSpikeMagic) {
        skip_byte();
        ++pos;
        continue;
      }
      if (left < kIntanSpikeRecordBytes) break;  // the rest of this record comes later
      in_sync_ = true;
      decode_record(p + pos, out);
      pos += kIntanSpikeRecordBytes;
      continue;
    }
    // Fewer bytes than a magic: keep them only if a magic could start here.
    if (is_magic_prefix(p + pos, left)) break;
    skip_byte();
    ++pos;
  }
  return pos;
}

void IntanSpikeStreamDecoder::skip_byte() {
  if (in_sync_) {
    ++stats_.format_packet_drops[static_cast<size_t>(FormatPacketDrop::kLostSync)];
    in_sync_ = false;
  }
  ++stats_.resync_bytes;
}

void IntanSpikeStreamDecoder::decode_record(const uint8_t* p, core::EventBatch& out) {
  const std::span<const char, kIntanNameBytes> name(reinterpret_cast<const char*>(p + 4),
                                                    kIntanNameBytes);
  const auto channel = intan_channel_from_name(name);
  if (!channel) {
    ++stats_.format_packet_drops[static_cast<size_t>(FormatPacketDrop::kBadChannelName)];
    return;
  }
  const auto timestamp = load_le<uint32_t>(p + 9);
  const uint8_t id = p[13];
  bool wrapped = false;
  const int64_t ticks = clock_.unwrap(timestamp, wrapped);
  if (wrapped) ++stats_.clock_wraps;
  // ticks / (p/q) s = ticks * q / p s: ticks_to_ns(ticks * q, p), checked for overflow first.
  if (ticks >= 0 && (ticks > std::numeric_limits<int64_t>::max() / rate_den_ ||
                     !ticks_fit_ns(ticks * rate_den_, rate_num_))) {
    // Hundreds of years of samples: no real device time (the ns would overflow).
    ++stats_.packet_drops[static_cast<size_t>(PacketDrop::kBadPacketTime)];
    return;
  }
  ++stats_.packets_accepted;
  if (ticks < 0) {
    ++stats_.event_drops[static_cast<size_t>(EventDrop::kNegativeTime)];
    return;
  }
  const int64_t t_ns = ticks_to_ns(ticks * rate_den_, rate_num_);
  out.device_time_ns = std::max(out.device_time_ns, t_ns);

  uint16_t unit = id;
  if (!options_.raw_spike_id) {
    if (id & kIntanSpikeIdArtifact) {
      ++stats_.format_event_drops[static_cast<size_t>(FormatEventDrop::kNoise)];
      return;
    }
    if (id == kIntanSpikeIdUnclassified) {
      unit = 0;
    } else if (id != 0 && id <= 0x08 && std::has_single_bit(id)) {
      unit = static_cast<uint16_t>(1 + std::countr_zero(id));  // 0x01..0x08 -> 1..4
    } else {
      ++stats_.format_event_drops[static_cast<size_t>(FormatEventDrop::kUnknownUnit)];
      return;
    }
  }
  core::SpikeEvent ev;
  ev.t_ns = t_ns;
  ev.channel = *channel;
  ev.unit = unit;
  out.events.push_back(ev);
  ++stats_.events_accepted;
}

}  // namespace spikeflow::stages
