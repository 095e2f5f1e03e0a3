#include "pipeline/sender.h"

#include <utility>  // boost 1.74 asio/awaitable.hpp uses std::exchange without it
#include <boost/asio.hpp>
#include <algorithm>
#include <fstream>
#include <random>
#include <tuple>
#include <fmt/format.h>
#include <vector>

#include "core/time.h"
#include "pipeline/pacer.h"
#include "stages/blackrock_packet.h"
#include "stages/intan_spike_stream.h"
#include "stages/native_packet.h"
#include "stages/native_stream_framer.h"

namespace spikeflow::pipeline {

namespace asio = boost::asio;
using asio::ip::udp;

namespace {

/// Every option error before a socket is opened, as one line naming the option.
void check_send_options(const SendOptions& o) {
  if (o.packet_interval_ns <= 0) throw std::runtime_error("send: packet interval must be > 0");
  if (o.max_events_per_packet < 1 ||
      static_cast<size_t>(o.max_events_per_packet) > stages::kMaxEventsPerDatagram) {
    throw std::runtime_error("send: max events per packet must be in [1, " +
                             std::to_string(stages::kMaxEventsPerDatagram) + "]");
  }
  if (o.transport == Transport::kNone)
    throw std::runtime_error("send: transport none has no socket to send to");
  if (auto why = format_transport_problem(o.format, o.transport))
    throw std::runtime_error("send: " + std::string(*why));
  if (o.clock_jump_at_ns < -1 || o.restart_at_ns < -1)
    throw std::runtime_error("send: fault times must be >= 0");
}

/// Turns one packet interval's events into the bytes of the chosen format (see sender.h).
class PacketEncoder {
 public:
  explicit PacketEncoder(const SendOptions& o)
      : o_(o), tcp_(o.transport == Transport::kTcp), br_(o.blackrock_protocol) {
    header_.stream_id = o.stream_id;
    std::tie(rate_p_, rate_q_) = stages::intan_rate_fraction(o.sample_rate_hz);
    if (rate_q_ == 0 && o.format != IngestFormat::kNative)
      throw std::runtime_error(fmt::format(
          "send: sample rate {} Hz is not a fraction p/q, q <= 1000", o.sample_rate_hz));
  }

  /// Replaces buffer with one packet of batch at device_time_ns. False when there is nothing to
  /// send: an Intan interval without spikes (that stream has no heartbeat).
  bool encode(std::span<const core::SpikeEvent> batch, int64_t device_time_ns,
              std::vector<uint8_t>& buffer) {
    buffer.clear();
    header_.device_time_ns = device_time_ns;
    if (o_.format == IngestFormat::kBlackrock) {
      for (const auto& e : batch) {
        // channel = instrument * 65536 + chid; format_channel_problem refused the rest.
        stages::encode_blackrock_spike(
            br_, device_clock(e.t_ns), static_cast<uint16_t>(e.channel & 0xFFFF),
            static_cast<uint8_t>(e.unit), 0, buffer,
            static_cast<uint8_t>(e.channel / stages::kBlackrockInstrumentStride));
      }
      stages::encode_blackrock_heartbeat(br_, device_clock(device_time_ns), buffer);
    } else if (o_.format == IngestFormat::kIntan) {
      for (const auto& e : batch) {
        const auto name = stages::intan_channel_name(e.channel);
        const uint8_t id = e.unit == 0 ? stages::kIntanSpikeIdUnclassified
                                       : static_cast<uint8_t>(1u << (e.unit - 1));
        stages::encode_intan_spike(std::string_view(name.data(), name.size()),
                                   static_cast<uint32_t>(device_clock(e.t_ns)), id, buffer);
      }
      if (buffer.empty()) return false;
    } else if (tcp_) {
      stages::encode_native_frame(header_, batch, buffer);
    } else {
      stages::encode_native_packet(header_, batch, buffer);
    }
    ++header_.sequence;
    return true;
  }

  /// A device restart: the next packet's sequence number is 0 again.
  void restart_sequence() { header_.sequence = 0; }

 private:
  /// Device units of the chosen format: sample ticks (Intan, Blackrock 3.11) or ns.
  uint64_t device_clock(int64_t t_ns) const {
    if (o_.format == IngestFormat::kIntan ||
        (o_.format == IngestFormat::kBlackrock && br_ == stages::BlackrockProtocol::kV3_11)) {
      // t · rate / 1e9 without overflowing 64 bits: whole seconds and the remainder apart.
      // The rate as p/q (Intan 3333 Hz mode: 10000/3): ticks = floor(t * p / (q * 1e9)).
      const int64_t whole = t_ns / core::kNsPerS, rest = t_ns % core::kNsPerS;
      const int64_t ticks_q =
          whole * rate_p_ + rest * rate_p_ / core::kNsPerS;  // ticks * q, floored
      return static_cast<uint64_t>(ticks_q / rate_q_);
    }
    return static_cast<uint64_t>(t_ns);
  }

  const SendOptions& o_;
  bool tcp_;
  stages::BlackrockProtocol br_;
  int64_t rate_p_ = 1, rate_q_ = 1;  // sample_rate_hz = p / q
  stages::NativePacketHeader header_;
};

/// Where the packets go: a connected TCP stream (no Nagle delay) or an unconnected UDP socket.
class PacketSocket {
 public:
  PacketSocket(asio::io_context& io, const SendOptions& o)
      : tcp_(o.transport == Transport::kTcp), udp_(io), stream_(io) {
    boost::system::error_code ec;
    const auto address = asio::ip::make_address(o.address, ec);
    if (ec) throw std::runtime_error("send: bad address '" + o.address + "': " + ec.message());
    target_ = udp::endpoint(address, static_cast<uint16_t>(o.port));
    if (tcp_) {
      stream_.connect({address, static_cast<uint16_t>(o.port)}, ec);
      if (ec) {
        throw std::runtime_error("send: cannot connect to tcp " + o.address + ":" +
                                 std::to_string(o.port) + ": " + ec.message());
      }
      stream_.set_option(asio::ip::tcp::no_delay(true), ec);
    } else {
      udp_.open(target_.protocol(), ec);
      if (ec) throw std::runtime_error("send: cannot open a UDP socket: " + ec.message());
    }
  }

  /// False on a send error (e.g. ECONNREFUSED echoed from an earlier datagram).
  bool send(const std::vector<uint8_t>& bytes) {
    boost::system::error_code ec;
    if (tcp_) {
      asio::write(stream_, asio::buffer(bytes), ec);
    } else {
      udp_.send_to(asio::buffer(bytes), target_, 0, ec);
    }
    return !ec;
  }

 private:
  bool tcp_;
  udp::endpoint target_;
  udp::socket udp_;
  asio::ip::tcp::socket stream_;
};

}  // namespace

std::optional<std::string> format_channel_problem(IngestFormat format,
                                                  stages::BlackrockProtocol protocol,
                                                  uint32_t channel) {
  if (format == IngestFormat::kBlackrock) {
    const uint32_t chid = channel % stages::kBlackrockInstrumentStride;
    const uint32_t instrument = channel / stages::kBlackrockInstrumentStride;
    if (chid == 0 || chid >= stages::kBlackrockConfigChannel) {
      return fmt::format(
          "channel {} (chid {}) cannot travel as blackrock: chids are 1-based, 1..32767 "
          "(channel = instrument * 65536 + chid); renumber the session's channels from 1",
          channel, chid);
    }
    if (instrument > 255 || (instrument > 0 && protocol == stages::BlackrockProtocol::kV3_11)) {
      return fmt::format(
          "channel {} (instrument {}) cannot travel as blackrock {}: {}", channel, instrument,
          to_string(protocol),
          instrument > 255 ? "instruments are 0..255" : "protocol 3.11 has no instrument byte");
    }
  } else if (format == IngestFormat::kIntan) {
    if (channel >= stages::kIntanPorts * stages::kIntanChannelsPerPort) {
      return fmt::format(
          "channel {} cannot travel as intan: channels are port A..H x 128 = 0..1023", channel);
    }
  }
  return std::nullopt;
}

SendStats send_events(std::span<const core::SpikeEvent> events, const SendOptions& o,
                      const std::atomic<bool>* stop,
                      void (*progress)(const SendStats&, int64_t device_ns)) {
  check_send_options(o);
  for (const auto& e : events) {
    if (auto why = format_channel_problem(o.format, o.blackrock_protocol, e.channel)) {
      throw std::runtime_error("send: " + *why);
    }
  }
  asio::io_context io;
  PacketSocket socket(io, o);
  PacketEncoder encoder(o);
  SendStats stats;
  std::vector<uint8_t> buffer;
  const int64_t start =
      o.start_device_ns >= 0 ? o.start_device_ns : (events.empty() ? 0 : events.front().t_ns);
  const auto faults = DeviceClockFaults::from(o, start);
  const bool any_fault = o.device_offset_ns != 0 || o.clock_jump_at_ns >= 0 || o.restart_at_ns >= 0;
  if (any_fault &&
      (faults.device_ns(start) < 0 ||
       (o.clock_jump_at_ns >= 0 && faults.device_ns(start + o.clock_jump_at_ns) < 0))) {
    throw std::runtime_error(
        "send: the injected clock jump takes the device clock below 0; add a device offset");
  }
  bool restarted = false;
  std::vector<core::SpikeEvent> shifted;  // the batch on the faulted device clock
  auto send_packet = [&](std::span<const core::SpikeEvent> batch, int64_t played_ns) {
    int64_t device_time_ns = played_ns;
    if (any_fault) {
      if (!restarted && faults.restarted(played_ns)) {
        restarted = true;
        encoder.restart_sequence();
      }
      device_time_ns = faults.device_ns(played_ns);
      shifted.assign(batch.begin(), batch.end());
      for (auto& e : shifted) e.t_ns = std::max<int64_t>(0, device_time_ns - (played_ns - e.t_ns));
      batch = shifted;
    }
    if (!encoder.encode(batch, device_time_ns, buffer)) return;
    if (o.send_log) o.send_log->emplace_back(device_time_ns, core::host_now_ns());
    if (socket.send(buffer)) {
      ++stats.packets;
      stats.events += batch.size();
    } else {
      ++stats.send_errors;  // keep going: the receiver may come up later
    }
  };

  const int64_t end = std::max(o.end_device_ns, events.empty() ? start : events.back().t_ns);
  if (o.send_log)
    o.send_log->reserve(static_cast<size_t>((end - start) / o.packet_interval_ns) + 16);
  // Heartbeats go on until the clock is more than one interval past the end, so the receiver's
  // watermark passes the last event.
  Pacer pacer(events,
              {start, end + o.packet_interval_ns + 1, o.packet_interval_ns, o.speed, false});
  const auto per_packet = static_cast<size_t>(o.max_events_per_packet);
  int64_t last_progress = pacer.host_start_ns();
  while (!(stop && stop->load())) {
    const auto packet = pacer.next();
    if (!packet) break;
    // One packet per interval (a heartbeat when it has no spikes), split at max_events_per_packet.
    const auto& released = packet->events;
    if (released.empty()) send_packet({}, packet->device_time_ns);
    for (size_t i = 0; i < released.size(); i += per_packet) {
      send_packet(released.subspan(i, std::min(released.size() - i, per_packet)),
                  packet->device_time_ns);
    }
    const int64_t now = core::host_now_ns();
    if (progress && now - last_progress >= core::kNsPerS) {
      stats.seconds = static_cast<double>(now - pacer.host_start_ns()) * 1e-9;
      progress(stats, packet->device_time_ns);
      last_progress = now;
    }
  }
  stats.seconds = static_cast<double>(core::host_now_ns() - pacer.host_start_ns()) * 1e-9;
  return stats;
}

std::vector<core::SpikeEvent> multiply_rate(std::span<const core::SpikeEvent> events, int k,
                                            int64_t jitter_ns, uint64_t seed) {
  std::vector<core::SpikeEvent> out;
  if (k <= 1 || events.empty()) return {events.begin(), events.end()};
  out.reserve(events.size() * static_cast<size_t>(k));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> jitter(-jitter_ns, jitter_ns);
  const int64_t lo = events.front().t_ns, hi = events.back().t_ns;
  for (const auto& e : events) {
    out.push_back(e);
    for (int i = 1; i < k; ++i) {
      auto c = e;
      c.t_ns = std::clamp(e.t_ns + jitter(rng), lo, hi);
      out.push_back(c);
    }
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.t_ns < b.t_ns; });
  return out;
}

void write_send_log(const std::string& path, const std::vector<std::pair<int64_t, int64_t>>& log) {
  std::ofstream f(path, std::ios::binary);
  for (const auto& [d, h] : log) {
    f.write(reinterpret_cast<const char*>(&d), sizeof d);
    f.write(reinterpret_cast<const char*>(&h), sizeof h);
  }
  if (!f) throw std::runtime_error(path + ": cannot write the send log");
}

std::vector<std::pair<int64_t, int64_t>> read_send_log(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error(path + ": cannot open the send log");
  std::vector<std::pair<int64_t, int64_t>> log;
  int64_t d, h;
  while (f.read(reinterpret_cast<char*>(&d), sizeof d) &&
         f.read(reinterpret_cast<char*>(&h), sizeof h)) {
    log.emplace_back(d, h);
  }
  return log;
}

}  // namespace spikeflow::pipeline
