#include "pipeline/udp_ingest.h"

#include <pthread.h>

#include <array>
#include <utility>  // boost 1.74 asio/awaitable.hpp uses std::exchange without it
#include <boost/asio.hpp>
#include <spdlog/spdlog.h>

#include "core/time.h"

namespace spikeflow::pipeline {

namespace asio = boost::asio;
using asio::ip::udp;

struct UdpIngest::Impl {
  asio::io_context io;
  udp::socket socket{io};
  udp::endpoint sender;
  std::array<uint8_t, 65536> buffer{};  // larger than any UDP payload: never truncates
  Sink sink;
  stages::NativePacketDecoder decoder;
  core::EventBatch batch;
  mutable std::mutex stats_mutex;
  stages::IngestStats stats_snapshot;
  std::thread thread;

  void receive() {
    socket.async_receive_from(asio::buffer(buffer), sender,
                              [this](const boost::system::error_code& ec, size_t n) {
                                on_datagram(ec, n);
                              });
  }

  void on_datagram(const boost::system::error_code& ec, size_t n) {
    if (ec == asio::error::operation_aborted) return;  // normal shutdown
    if (ec) {
      // ICMP port-unreachable echoes and similar transient errors: log (rate-limited) and go on.
      static int64_t last_log = 0;
      const int64_t now = core::host_now_ns();
      if (now - last_log > core::kNsPerS) {
        spdlog::warn("ingest: receive error: {}", ec.message());
        last_log = now;
      }
      receive();
      return;
    }
    const int64_t arrival = core::host_now_ns();
    const bool ok = decoder.decode(std::span<const uint8_t>(buffer.data(), n), arrival, batch);
    {
      std::lock_guard lock(stats_mutex);
      stats_snapshot = decoder.stats();
    }
    if (ok) sink(batch);
    receive();
  }

  void run() {
    pthread_setname_np(pthread_self(), "sf-ingest");
    for (;;) {
      try {
        io.run();
        return;  // stopped
      } catch (const std::exception& e) {
        spdlog::error("ingest: {} (continuing)", e.what());
      }
    }
  }
};

UdpIngest::UdpIngest(const IngestConfig& config, Sink sink) : impl_(std::make_unique<Impl>()) {
  impl_->sink = std::move(sink);
  boost::system::error_code ec;
  const auto address = asio::ip::make_address(config.address, ec);
  if (ec) throw std::runtime_error("ingest: bad address '" + config.address + "': " + ec.message());
  const udp::endpoint ep(address, static_cast<uint16_t>(config.port));
  impl_->socket.open(ep.protocol(), ec);
  if (!ec) impl_->socket.bind(ep, ec);
  if (ec) {
    throw std::runtime_error("ingest: cannot bind UDP " + config.address + ":" +
                             std::to_string(config.port) + ": " + ec.message());
  }
  impl_->socket.set_option(asio::socket_base::receive_buffer_size(config.receive_buffer_bytes), ec);
  if (ec) spdlog::warn("ingest: cannot set receive buffer to {} bytes: {}", config.receive_buffer_bytes, ec.message());
  impl_->batch.events.reserve(stages::kMaxEventsPerDatagram);
}

UdpIngest::~UdpIngest() { stop(); }

void UdpIngest::start() {
  impl_->receive();
  impl_->thread = std::thread([this] { impl_->run(); });
}

void UdpIngest::stop() {
  if (!impl_) return;
  impl_->io.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
  // The io thread is gone: the socket is ours to close.
  boost::system::error_code ignored;
  impl_->socket.close(ignored);
}

uint16_t UdpIngest::port() const {
  boost::system::error_code ec;
  auto ep = impl_->socket.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

stages::IngestStats UdpIngest::stats() const {
  std::lock_guard lock(impl_->stats_mutex);
  return impl_->stats_snapshot;
}

}  // namespace spikeflow::pipeline
