#include "pipeline/transport_floor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "core/byte_io.h"
#include "core/prediction.h"
#include "core/time.h"
#include "stages/native_packet.h"
#include "stages/prediction_codec.h"

namespace spikeflow::pipeline {

TransportFloorRelay::TransportFloorRelay(const FloorRelayOptions& options)
    : options_(options), pub_(context_, zmq::socket_type::pub) {
  fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd_ < 0) throw std::runtime_error("floor relay: cannot open a UDP socket");
  const int rcvbuf = options_.receive_buffer_bytes;
  (void)::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);  // a request, as ingest
  timeval tv{0, 20'000};  // recv() returns every 20 ms so that stop() is noticed
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ::close(fd_);
    throw std::runtime_error(std::string("floor relay: cannot bind UDP 127.0.0.1: ") +
                             std::strerror(errno));
  }
  port_ = ntohs(addr.sin_port);
  pub_.set(zmq::sockopt::linger, options_.linger_ms);
  pub_.set(zmq::sockopt::sndhwm, options_.send_high_water_mark);
  try {
    monitor_ = std::make_unique<SubscriberMonitor>(context_, pub_, "floor relay");
  } catch (const std::exception&) {
    ::close(fd_);
    throw;
  }
  try {
    pub_.bind(options_.endpoint);
  } catch (const zmq::error_t& e) {
    monitor_.reset();
    ::close(fd_);
    throw std::runtime_error("floor relay: cannot bind " + options_.endpoint + ": " + e.what());
  }
  endpoint_ = pub_.get(zmq::sockopt::last_endpoint);
}

TransportFloorRelay::~TransportFloorRelay() {
  stop();
  if (fd_ >= 0) ::close(fd_);
}

void TransportFloorRelay::start() { thread_ = std::thread([this] { run(); }); }

void TransportFloorRelay::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  monitor_.reset();  // this thread owns pub_ again: the monitor stops while the socket is open
  pub_.close();
}

size_t TransportFloorRelay::subscribers() const { return monitor_ ? monitor_->subscribers() : 0; }

bool TransportFloorRelay::wait_for_subscribers(size_t n, std::chrono::milliseconds timeout) const {
  return monitor_ && monitor_->wait_for_subscribers(n, timeout);
}

void TransportFloorRelay::run() {
  std::array<uint8_t, 65536> buf;
  std::vector<uint8_t> wire;
  core::Prediction p;
  p.output_dim = options_.output_dim;
  int64_t next = -1;  // index of the open chunk, as the binner numbers it (start / width)
  int64_t seq = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    const ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
    if (n < 0) continue;  // the 20 ms timeout (EAGAIN) or EINTR: look at stop_ again
    const int64_t arrival = core::host_now_ns();
    ++stats_.packets;
    if (static_cast<size_t>(n) < stages::kNativeHeaderBytes ||
        core::load_le<uint32_t>(buf.data()) != stages::kNativeMagic) {
      ++stats_.malformed;
      continue;
    }
    const int64_t device = core::load_le<int64_t>(buf.data() + 24);
    if (next < 0) {
      // Anchored as the binner anchors: on the earliest time in the first packet.
      const uint32_t events = core::load_le<uint32_t>(buf.data() + 12);
      const int64_t t0 = events > 0 && static_cast<size_t>(n) >= stages::kNativeHeaderBytes + 8
                             ? std::min(device, core::load_le<int64_t>(buf.data() + 32))
                             : device;
      next = core::chunk_index(t0, options_.width_ns);
    }
    while ((next + 1) * options_.width_ns + options_.lateness_ns <= device) {
      p.seq = seq++;
      p.chunk_index = next;
      p.start_ns = next * options_.width_ns;
      p.end_ns = p.start_ns + options_.width_ns;
      p.timing = {};
      p.timing.trigger_arrival_ns = arrival;
      p.timing.close_ns = p.timing.tokenize_ns = p.timing.decode_start_ns =
          p.timing.decode_end_ns = arrival;
      p.timing.publish_ns = core::host_now_ns();
      stages::encode_prediction(p, wire);
      const auto r1 =
          pub_.send(zmq::buffer(options_.topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
      const auto r2 =
          r1 ? pub_.send(zmq::const_buffer(wire.data(), wire.size()), zmq::send_flags::dontwait)
             : r1;
      if (r2) {
        ++stats_.forwarded;
      } else {
        ++stats_.send_failures;
      }
      ++next;
    }
  }
}

}  // namespace spikeflow::pipeline
