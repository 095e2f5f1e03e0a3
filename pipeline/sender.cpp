#include "pipeline/sender.h"

#include <utility>  // boost 1.74 asio/awaitable.hpp uses std::exchange without it
#include <boost/asio.hpp>
#include <thread>
#include <vector>

#include "core/time.h"
#include "stages/blackrock_packet.h"
#include "stages/intan_spike_stream.h"
#include "stages/native_packet.h"
#include "stages/native_stream_framer.h"

namespace spikeflow::pipeline {

namespace asio = boost::asio;
using asio::ip::udp;

SendStats send_events(std::span<const core::SpikeEvent> events, const SendOptions& o,
                      const std::atomic<bool>* stop,
                      void (*progress)(const SendStats&, int64_t device_ns)) {
  if (o.packet_interval_ns <= 0) throw std::runtime_error("send: packet interval must be > 0");
  if (o.max_events_per_packet < 1 ||
      static_cast<size_t>(o.max_events_per_packet) > stages::kMaxEventsPerDatagram) {
    throw std::runtime_error("send: max events per packet must be in [1, " +
                             std::to_string(stages::kMaxEventsPerDatagram) + "]");
  }
  if (o.transport == Transport::kNone) throw std::runtime_error("send: transport none has no socket to send to");
  if (auto why = format_transport_problem(o.format, o.transport)) throw std::runtime_error("send: " + std::string(*why));
  const bool tcp_transport = o.transport == Transport::kTcp;
  const auto br = o.blackrock_protocol;
  auto device_clock = [&](int64_t t_ns) -> uint64_t {  // device units of the chosen format
    if (o.format == IngestFormat::kIntan ||
        (o.format == IngestFormat::kBlackrock && br == stages::BlackrockProtocol::kV3_11)) {
      // t · rate / 1e9 without overflowing 64 bits: whole seconds and the remainder apart.
      const int64_t whole = t_ns / core::kNsPerS, rest = t_ns % core::kNsPerS;
      return static_cast<uint64_t>(whole * o.sample_rate_hz + rest * o.sample_rate_hz / core::kNsPerS);
    }
    return static_cast<uint64_t>(t_ns);
  };
  asio::io_context io;
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(o.address, ec);
  if (ec) throw std::runtime_error("send: bad address '" + o.address + "': " + ec.message());
  const udp::endpoint target(address, static_cast<uint16_t>(o.port));
  udp::socket socket(io);
  asio::ip::tcp::socket stream(io);
  if (tcp_transport) {
    stream.connect({address, static_cast<uint16_t>(o.port)}, ec);
    if (ec) throw std::runtime_error("send: cannot connect to tcp " + o.address + ":" + std::to_string(o.port) + ": " + ec.message());
    stream.set_option(asio::ip::tcp::no_delay(true), ec);
  } else {
    socket.open(target.protocol(), ec);
    if (ec) throw std::runtime_error("send: cannot open a UDP socket: " + ec.message());
  }

  SendStats stats;
  int64_t device = o.start_device_ns >= 0 ? o.start_device_ns
                                          : (events.empty() ? 0 : events.front().t_ns);
  const int64_t end = std::max(o.end_device_ns, events.empty() ? device : events.back().t_ns);
  const int64_t host0 = core::host_now_ns();
  const int64_t device0 = device;
  std::vector<uint8_t> buffer;
  stages::NativePacketHeader header;
  header.stream_id = o.stream_id;
  size_t next = 0;
  int64_t last_progress = host0;
  if (o.send_log) o.send_log->reserve(static_cast<size_t>((end - device) / o.packet_interval_ns) + 16);

  auto send_packet = [&](std::span<const core::SpikeEvent> batch, int64_t device_time) {
    buffer.clear();
    header.device_time_ns = device_time;
    if (o.format == IngestFormat::kBlackrock) {
      for (const auto& e : batch) {
        stages::encode_blackrock_spike(br, device_clock(e.t_ns), static_cast<uint16_t>(e.channel),
                                       static_cast<uint8_t>(e.unit), 0, buffer);
      }
      stages::encode_blackrock_heartbeat(br, device_clock(device_time), buffer);
    } else if (o.format == IngestFormat::kIntan) {
      for (const auto& e : batch) {
        const auto name = stages::intan_channel_name(e.channel);
        const uint8_t id = e.unit == 0 ? stages::kIntanSpikeIdUnclassified : static_cast<uint8_t>(1u << (e.unit - 1));
        stages::encode_intan_spike(std::string_view(name.data(), name.size()),
                                   static_cast<uint32_t>(device_clock(e.t_ns)), id, buffer);
      }
      if (buffer.empty()) return;  // the Intan stream has no heartbeat
    } else if (tcp_transport) {
      stages::encode_native_frame(header, batch, buffer);
    } else {
      stages::encode_native_packet(header, batch, buffer);
    }
    ++header.sequence;
    if (o.send_log) o.send_log->emplace_back(device_time, core::host_now_ns());
    if (tcp_transport) {
      asio::write(stream, asio::buffer(buffer), ec);
    } else {
      socket.send_to(asio::buffer(buffer), target, 0, ec);
    }
    if (ec) {
      ++stats.send_errors;  // e.g. ECONNREFUSED echoed from an earlier datagram: keep going
    } else {
      ++stats.packets;
      stats.events += batch.size();
    }
  };

  while (device <= end + o.packet_interval_ns) {
    if (stop && stop->load()) break;
    device += o.packet_interval_ns;
    if (o.speed > 0) {
      const auto host_due = host0 + static_cast<int64_t>(static_cast<double>(device - device0) / o.speed);
      const int64_t wait = host_due - core::host_now_ns();
      if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
    }
    // Everything up to the played clock goes out now; chunks of at most max_events_per_packet.
    size_t upto = next;
    while (upto < events.size() && events[upto].t_ns <= device) ++upto;
    if (upto == next) {
      send_packet({}, device);  // heartbeat
    }
    while (next < upto) {
      const size_t n = std::min<size_t>(upto - next, static_cast<size_t>(o.max_events_per_packet));
      send_packet(events.subspan(next, n), device);
      next += n;
    }
    const int64_t now = core::host_now_ns();
    if (progress && now - last_progress >= core::kNsPerS) {
      stats.seconds = static_cast<double>(now - host0) * 1e-9;
      progress(stats, device);
      last_progress = now;
    }
  }
  stats.seconds = static_cast<double>(core::host_now_ns() - host0) * 1e-9;
  return stats;
}

}  // namespace spikeflow::pipeline
