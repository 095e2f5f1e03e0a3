#include "pipeline/ingest.h"

#include <pthread.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <future>
#include <tuple>
#include <list>
#include <mutex>
#include <thread>
#include <utility>  // boost 1.74 asio/awaitable.hpp uses std::exchange without it
#include <variant>
#include <boost/asio.hpp>
#include <spdlog/spdlog.h>

#include "core/time.h"
#include "stages/blackrock_packet_decoder.h"
#include "stages/intan_spike_stream.h"
#include "stages/native_stream_framer.h"

namespace spikeflow::pipeline {

namespace asio = boost::asio;
using asio::ip::tcp;
using asio::ip::udp;

namespace {

stages::BlackrockOptions blackrock_options(const IngestConfig& c) {
  stages::BlackrockOptions o;
  o.protocol = c.blackrock_protocol;
  o.sample_rate_hz = static_cast<int64_t>(c.sample_rate_hz);
  o.time_units = c.blackrock_time_units;
  o.fe_channel_count = static_cast<uint32_t>(c.blackrock_fe_channels);
  return o;
}

/// Runs io.run() on the calling thread until stopped, logging and surviving handler exceptions.
void run_io(asio::io_context& io, const char* name) {
  pthread_setname_np(pthread_self(), name);
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      spdlog::error("{}: {} (continuing)", name, e.what());
    }
  }
}

/// Starts the io thread: setup (the thread's realtime settings) runs on it first; its exception
/// is rethrown here, after the thread is joined, so start() fails instead of a silent downgrade.
std::thread start_io_thread(asio::io_context& io, const char* name,
                            const Ingest::ThreadSetup& setup) {
  std::promise<void> ready;
  auto started = ready.get_future();
  std::thread t([&io, name, setup, ready = std::move(ready)]() mutable {
    try {
      if (setup) setup();
    } catch (...) {
      ready.set_exception(std::current_exception());
      return;
    }
    ready.set_value();
    run_io(io, name);
  });
  try {
    started.get();
  } catch (...) {
    t.join();
    throw;
  }
  return t;
}

/// Logs at most once a second per call site.
class RateLimitedLog {
 public:
  template <typename... Args>
  void warn(fmt::format_string<Args...> f, Args&&... args) {
    const int64_t now = core::host_now_ns();
    if (now - last_ < core::kNsPerS) {
      ++suppressed_;
      return;
    }
    spdlog::warn(f, std::forward<Args>(args)...);
    if (suppressed_) spdlog::warn("({} similar messages suppressed)", suppressed_);
    suppressed_ = 0;
    last_ = now;
  }

 private:
  int64_t last_ = INT64_MIN / 2;
  uint64_t suppressed_ = 0;
};

asio::ip::address parse_address(const std::string& a) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(a, ec);
  if (ec) throw std::runtime_error("ingest: bad address '" + a + "': " + ec.message());
  return address;
}

// ---------------------------------------------------------------------------------------------
// UDP: one socket, one datagram decoder (native or Blackrock).
class UdpIngest final : public Ingest {
 public:
  UdpIngest(const IngestConfig& c, Sink sink, ThreadSetup setup)
      : sink_(std::move(sink)),
        setup_(std::move(setup)),
        allow_(allowed_sources(c)),
        busy_poll_ns_(static_cast<int64_t>(c.busy_poll_us) * 1000) {
    if (c.format == IngestFormat::kBlackrock) {
      decoder_.emplace<stages::BlackrockPacketDecoder>(blackrock_options(c));
      batch_.events.reserve(stages::kBlackrockMaxSpikesPerDatagram);
    } else {
      batch_.events.reserve(stages::kMaxEventsPerDatagram);
    }
    const udp::endpoint ep(parse_address(c.address), static_cast<uint16_t>(c.port));
    boost::system::error_code ec;
    socket_.open(ep.protocol(), ec);
    if (!ec) socket_.bind(ep, ec);
    if (ec) {
      throw std::runtime_error("ingest: cannot bind UDP " + c.address + ":" +
                               std::to_string(c.port) + ": " + ec.message());
    }
    socket_.set_option(asio::socket_base::receive_buffer_size(c.receive_buffer_bytes), ec);
    if (ec)
      spdlog::warn("ingest: cannot set the UDP receive buffer to {} bytes: {}",
                   c.receive_buffer_bytes, ec.message());
    // Busy poll reads with plain receive_from between the async reads: it must never block.
    if (busy_poll_ns_ > 0) socket_.non_blocking(true, ec);
    if (ec) throw std::runtime_error("ingest.busy_poll_us: cannot make the socket non-blocking: " +
                                     ec.message());
  }
  ~UdpIngest() override { stop(); }

  void start() override {
    receive();
    thread_ = start_io_thread(io_, "sf-ingest-udp", setup_);
  }

  void stop() override {
    io_.stop();
    const bool was_running = thread_.joinable();
    if (was_running) thread_.join();
    boost::system::error_code ignored;
    socket_.close(ignored);  // the io thread is gone: the socket is ours
    if (was_running && busy_poll_ns_ > 0) {
      spdlog::info("ingest: busy poll took {} of {} datagrams (the rest woke the thread)",
                   busy_polled_, datagrams_);
    }
  }

  uint16_t port() const override {
    boost::system::error_code ec;
    auto ep = socket_.local_endpoint(ec);
    return ec ? 0 : ep.port();
  }

  stages::IngestStats stats() const override {
    std::lock_guard lock(stats_mutex_);
    return stats_;
  }

 private:
  void receive() {
    socket_.async_receive_from(
        asio::buffer(buffer_), sender_,
        [this](const boost::system::error_code& ec, size_t n) { on_datagram(ec, n); });
  }

  void on_datagram(const boost::system::error_code& ec, size_t n) {
    if (ec == asio::error::operation_aborted) return;  // shutdown
    if (ec) {
      log_.warn("ingest: UDP receive error: {}", ec.message());  // e.g. ICMP echoes; keep going
      receive();
      return;
    }
    handle(n);
    if (busy_poll_ns_ > 0) busy_poll();
    receive();
  }

  /// ingest.busy_poll_us: non-blocking reads until busy_poll_ns_ passes without a datagram,
  /// restarting the clock at each one. Bounded: at most kBusyPollBatch datagrams, and it returns
  /// as soon as stop() is called, so the io loop and shutdown are never starved.
  void busy_poll() {
    static constexpr int kBusyPollBatch = 256;
    int64_t until = core::host_now_ns() + busy_poll_ns_;
    for (int taken = 0; taken < kBusyPollBatch && !io_.stopped();) {
      boost::system::error_code ec;
      const size_t n = socket_.receive_from(asio::buffer(buffer_), sender_, 0, ec);
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        if (core::host_now_ns() >= until) return;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        continue;
      }
      if (ec) return;  // the async read that follows reports it
      ++taken;
      ++busy_polled_;
      handle(n);
      until = core::host_now_ns() + busy_poll_ns_;
    }
  }

  /// One datagram of n bytes in buffer_ from sender_: access check, decode, sink.
  void handle(size_t n) {
    ++datagrams_;
    if (!allow_.contains(
            sender_.address())) {  // before decoding: a refused source costs nothing more
      refused_log_.warn("ingest: refused a datagram from {} (not in ingest.allow)",
                        sender_.address().to_string());
      std::lock_guard lock(stats_mutex_);
      stats_.refused_source = ++refused_;
      return;
    }
    const int64_t arrival = core::host_now_ns();
    const std::span<const uint8_t> bytes(buffer_.data(), n);
    const bool ok = std::visit([&](auto& d) { return d.decode(bytes, arrival, batch_); }, decoder_);
    {
      std::lock_guard lock(stats_mutex_);
      stats_ = std::visit([](auto& d) { return d.stats(); }, decoder_);
      stats_.refused_source = refused_;
    }
    if (ok) sink_(batch_);
  }

  asio::io_context io_;
  udp::socket socket_{io_};
  udp::endpoint sender_;
  std::array<uint8_t, 65536> buffer_{};  // larger than any UDP payload: never truncates
  Sink sink_;
  ThreadSetup setup_;
  std::variant<stages::NativePacketDecoder, stages::BlackrockPacketDecoder> decoder_;
  core::EventBatch batch_;
  mutable std::mutex stats_mutex_;
  stages::IngestStats stats_;
  RateLimitedLog log_;
  CidrSet allow_;         // ingest.allow, or loopback only
  uint64_t refused_ = 0;  // io thread only
  RateLimitedLog refused_log_;
  const int64_t busy_poll_ns_;  // ingest.busy_poll_us
  uint64_t datagrams_ = 0;      // io thread; read by stop() after the join
  uint64_t busy_polled_ = 0;    // ... of them read by busy_poll()
  std::thread thread_;
};

// ---------------------------------------------------------------------------------------------
// TCP: an acceptor; each peer gets a connection with its own stream decoder.
class TcpIngest final : public Ingest {
  using Decoder = std::variant<stages::NativeStreamFramer, stages::IntanSpikeStreamDecoder>;

  struct Connection : std::enable_shared_from_this<Connection> {
    Connection(TcpIngest& owner, tcp::socket s, Decoder d)
        : owner(owner), socket(std::move(s)), decoder(std::move(d)) {
      batch.events.reserve(buffer.size() / stages::kIntanSpikeRecordBytes + 1);
    }
    void read() {
      socket.async_read_some(asio::buffer(buffer),
                             [self = shared_from_this()](const boost::system::error_code& ec,
                                                         size_t n) { self->on_read(ec, n); });
    }
    void on_read(const boost::system::error_code& ec, size_t n) {
      if (ec == asio::error::operation_aborted) return;  // shutdown
      if (ec) {
        if (ec != asio::error::eof) owner.log_.warn("ingest: TCP peer error: {}", ec.message());
        owner.close(shared_from_this());
        return;
      }
      const int64_t arrival = core::host_now_ns();
      const std::span<const uint8_t> bytes(buffer.data(), n);
      bool broken = false;
      if (auto* framer = std::get_if<stages::NativeStreamFramer>(&decoder)) {
        framer->feed(bytes, arrival, owner.sink_);
        broken = framer->broken();
      } else {
        auto& intan = std::get<stages::IntanSpikeStreamDecoder>(decoder);  // one per connection
        intan.feed(bytes, arrival, batch);
        if (batch.device_time_ns >= 0 || !batch.events.empty()) owner.sink_(batch);
      }
      owner.publish_stats();
      if (broken) {
        owner.log_.warn(
            "ingest: TCP stream framing error; dropping the connection (the peer may reconnect)");
        owner.close(shared_from_this());
        return;
      }
      read();
    }
    const stages::IngestStats& stats() const {
      return std::visit([](auto& d) -> const stages::IngestStats& { return d.stats(); }, decoder);
    }

    TcpIngest& owner;
    tcp::socket socket;
    Decoder decoder;
    std::array<uint8_t, 65536> buffer{};
    core::EventBatch batch;
  };

 public:
  TcpIngest(const IngestConfig& c, Sink sink, ThreadSetup setup)
      : config_(c),
        sink_(std::move(sink)),
        setup_(std::move(setup)),
        client_(!c.connect.empty()),
        allow_(allowed_sources(c)) {
    if (client_) {
      // The peer is the configured ingest.connect server, not an arbitrary source: ingest.allow
      // governs who may send to a listening socket and does not apply to this outgoing connection.
      std::tie(remote_host_, remote_port_) = split_host_port(c.connect);
      make_decoder();
      return;
    }
    const tcp::endpoint ep(parse_address(c.address), static_cast<uint16_t>(c.port));
    boost::system::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      throw std::runtime_error("ingest: cannot listen on TCP " + c.address + ":" +
                               std::to_string(c.port) + ": " + ec.message());
    }
    make_decoder();  // validates format options now, not at the first connection
  }
  ~TcpIngest() override { stop(); }

  void start() override {
    if (client_) {
      asio::post(io_, [this] { connect(); });
    } else {
      accept();
    }
    thread_ = start_io_thread(io_, "sf-ingest-tcp", setup_);
  }

  void stop() override {
    io_.stop();
    if (thread_.joinable()) thread_.join();
    stopped_ = true;
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    connect_timer_.cancel();
    for (auto& c : connections_) c->socket.close(ignored);
    connections_.clear();
  }

  /// Listening: the bound port. Client mode: the port connected to.
  uint16_t port() const override {
    if (client_) {
      unsigned v = 0;
      const auto [end, ec] =
          std::from_chars(remote_port_.data(), remote_port_.data() + remote_port_.size(), v);
      return stopped_ || ec != std::errc() || v > 65535 ? 0 : static_cast<uint16_t>(v);
    }
    boost::system::error_code ec;
    auto ep = acceptor_.local_endpoint(ec);
    return ec ? 0 : ep.port();
  }

  stages::IngestStats stats() const override {
    std::lock_guard lock(stats_mutex_);
    return stats_;
  }

 private:
  static constexpr std::chrono::milliseconds kMinBackoff{100};
  static constexpr std::chrono::milliseconds kMaxBackoff{5000};

  Decoder make_decoder() const {
    if (config_.format == IngestFormat::kIntan) {
      stages::IntanOptions o;
      o.sample_rate_hz = config_.sample_rate_hz;
      return Decoder(std::in_place_type<stages::IntanSpikeStreamDecoder>, o);
    }
    return Decoder(std::in_place_type<stages::NativeStreamFramer>);
  }

  void accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, tcp::socket s) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        log_.warn("ingest: TCP accept error: {}", ec.message());
      } else if (!allowed(s)) {
        // Refused right after accept, before any byte is read.
        boost::system::error_code ignored;
        s.close(ignored);
        ++closed_totals_.refused_connections;
        publish_stats();
      } else {
        add_connection(std::move(s));
      }
      accept();
    });
  }

  /// Whether the peer of a just-accepted socket is in ingest.allow (logs a refusal).
  bool allowed(const tcp::socket& s) {
    boost::system::error_code ec;
    const auto peer = s.remote_endpoint(ec);
    if (ec) return false;  // already gone: nothing to serve
    if (allow_.contains(peer.address())) return true;
    refused_log_.warn("ingest: refused a TCP connection from {} (not in ingest.allow)",
                      peer.address().to_string());
    return false;
  }

  void close(const std::shared_ptr<Connection>& c) {
    boost::system::error_code ignored;
    c->socket.close(ignored);
    closed_totals_.add(c->stats());
    ++closed_totals_.disconnects;
    connections_.remove(c);
    publish_stats();
    if (client_) schedule_connect();
  }

  // Client mode (ingest.connect): one outgoing connection, re-established after a failure or a
  // disconnect with exponential backoff (100 ms doubling to 5 s, reset by a successful connect);
  // failed attempts are counted in IngestStats::connect_failures.
  static std::pair<std::string, std::string> split_host_port(const std::string& hp) {
    const auto colon = hp.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == hp.size()) {
      throw std::runtime_error("ingest.connect: '" + hp +
                               "': expected host:port, e.g. 127.0.0.1:5002");
    }
    std::string host = hp.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    return {host, hp.substr(colon + 1)};
  }

  void schedule_connect() {
    connect_timer_.expires_after(backoff_);
    connect_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec == asio::error::operation_aborted) return;
      connect();
    });
    backoff_ = std::min(backoff_ * 2, kMaxBackoff);
  }

  void connect() {
    boost::system::error_code ec;
    const auto endpoints = resolver_.resolve(remote_host_, remote_port_, ec);
    if (ec) {
      connect_failed("cannot resolve " + config_.connect + ": " + ec.message());
      return;
    }
    auto socket = std::make_shared<tcp::socket>(io_);
    asio::async_connect(
        *socket, endpoints,
        [this, socket](const boost::system::error_code& ec2, const tcp::endpoint&) {
          if (ec2 == asio::error::operation_aborted) return;
          if (ec2) {
            connect_failed("cannot connect to " + config_.connect + ": " + ec2.message());
            return;
          }
          backoff_ = kMinBackoff;
          spdlog::info("ingest: connected to {}", config_.connect);
          add_connection(std::move(*socket));
        });
  }

  void connect_failed(const std::string& why) {
    ++closed_totals_.connect_failures;
    publish_stats();
    log_.warn("ingest: {} (retrying in {} ms)", why, backoff_.count());
    schedule_connect();
  }

  void add_connection(tcp::socket s) {
    boost::system::error_code ignored;
    s.set_option(tcp::no_delay(true), ignored);
    auto c = std::make_shared<Connection>(*this, std::move(s), make_decoder());
    connections_.push_back(c);
    ++closed_totals_.connections;
    publish_stats();
    c->read();
  }

  void publish_stats() {
    stages::IngestStats total = closed_totals_;
    for (const auto& c : connections_) total.add(c->stats());
    std::lock_guard lock(stats_mutex_);
    stats_ = total;
  }

  IngestConfig config_;
  Sink sink_;
  ThreadSetup setup_;
  asio::io_context io_;
  tcp::acceptor acceptor_{io_};
  bool client_ = false;  // ingest.connect set
  std::string remote_host_, remote_port_;
  tcp::resolver resolver_{io_};
  asio::steady_timer connect_timer_{io_};
  std::chrono::milliseconds backoff_{kMinBackoff};  // io thread only
  bool stopped_ = false;
  std::list<std::shared_ptr<Connection>> connections_;  // io thread only
  stages::IngestStats closed_totals_;                   // io thread only
  mutable std::mutex stats_mutex_;
  stages::IngestStats stats_;
  RateLimitedLog log_;
  CidrSet allow_;  // ingest.allow, or loopback only
  RateLimitedLog refused_log_;
  std::thread thread_;
};

}  // namespace

CidrSet allowed_sources(const IngestConfig& config) {
  if (config.allow.empty()) return CidrSet::loopback();
  try {
    return CidrSet::parse(config.allow);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(std::string("ingest.allow: ") + e.what());
  }
}

std::unique_ptr<Ingest> make_ingest(const IngestConfig& config, Ingest::Sink sink,
                                    Ingest::ThreadSetup setup) {
  if (config.transport == Transport::kTcp)
    return std::make_unique<TcpIngest>(config, std::move(sink), std::move(setup));
  return std::make_unique<UdpIngest>(config, std::move(sink), std::move(setup));
}

}  // namespace spikeflow::pipeline
