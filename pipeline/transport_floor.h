// TransportFloorRelay: the bare transport with nothing of spikeflow in between — the floor that
// `spikeflow profile` (pipeline/profile_experiment.h) measures the pipeline against, in the same
// run and the same process layout: the same `spikeflow send` process plays the same session
// (same packets, sizes and pacing) into this relay's UDP socket, and the same `spikeflow listen`
// process subscribes to its ZeroMQ PUB socket (tcp or ipc, as the real run). For every packet the
// relay reads the native header's device time (stages/native_packet.h) and, where the binner's
// watermark rule would close a chunk (device time >= chunk end + lateness), publishes one
// prediction-sized message at once, encoded as the publisher does (stages/prediction_codec.h,
// topic frame + payload frame), with trigger_arrival_ns = the packet's receipt and publish_ns =
// the moment before the send (host_now_ns(), CLOCK_MONOTONIC like the real run). So:
//   UDP one-way  = trigger_arrival_ns - the sender's send log time of that packet
//   forward      = publish_ns - trigger_arrival_ns (header read + encode)
//   ZMQ one-way  = the subscriber's receive_ns - publish_ns
// One blocking recv() per packet on one thread: no event loop, no graph, no decoder.
// Its subscribers are counted as the publisher's are (pipeline/subscriber_monitor.h), so that the
// profile starts the sender only once its subscriber has joined.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include <zmq.hpp>

#include "pipeline/subscriber_monitor.h"

namespace spikeflow::pipeline {

struct FloorRelayOptions {
  std::string endpoint = "tcp://127.0.0.1:*";  ///< PUB bind endpoint (tcp or ipc)
  std::string topic = "pred";
  int64_t width_ns = 50'000'000;   ///< chunk width, device ns (the binner's)
  int64_t lateness_ns = 2'000'000; ///< watermark slack (the binner's)
  int output_dim = 2;              ///< values per message: the real prediction's size on the wire
  int receive_buffer_bytes = 8 << 20;  ///< SO_RCVBUF, as ingest asks
  int send_high_water_mark = 10000;
  int linger_ms = 200;
};

struct FloorRelayStats {
  uint64_t packets = 0;    ///< datagrams received
  uint64_t malformed = 0;  ///< not a native packet (counted, not forwarded)
  uint64_t forwarded = 0;  ///< messages published
  uint64_t send_failures = 0;
};

/// Thread contract: construct, start(), stop() and stats() from one thread; the relay thread owns
/// the UDP socket and the PUB socket between start() and stop().
class TransportFloorRelay {
 public:
  /// Binds UDP 127.0.0.1:0 and the PUB endpoint. Throws std::runtime_error naming what failed.
  explicit TransportFloorRelay(const FloorRelayOptions& options);
  ~TransportFloorRelay();
  TransportFloorRelay(const TransportFloorRelay&) = delete;
  TransportFloorRelay& operator=(const TransportFloorRelay&) = delete;

  void start();
  /// Stops and joins the relay thread (it notices within 20 ms). Idempotent.
  void stop();
  uint16_t port() const { return port_; }
  const std::string& endpoint() const { return endpoint_; }
  /// Counters; read after stop().
  const FloorRelayStats& stats() const { return stats_; }
  /// Subscribers connected to the PUB socket now (0 after stop()). Any thread, but not
  /// concurrently with stop().
  size_t subscribers() const;
  /// Blocks until at least n subscribers are connected or timeout passes; whether they are
  /// (false after stop()). Any thread, but not concurrently with stop().
  bool wait_for_subscribers(size_t n, std::chrono::milliseconds timeout) const;

 private:
  void run();

  FloorRelayOptions options_;
  int fd_ = -1;
  uint16_t port_ = 0;
  zmq::context_t context_{1};
  zmq::socket_t pub_;
  std::unique_ptr<SubscriberMonitor> monitor_;  // until stop(), which ends it before pub_ closes
  std::string endpoint_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  FloorRelayStats stats_;
};

}  // namespace spikeflow::pipeline
