// ZmqPublisher: the live pipeline's output edge, a ZeroMQ PUB socket sending one multipart
// message (topic, payload; stages/prediction_codec.h) per prediction.
// Thread contract: the socket is used only from the pipeline's serial publisher node (one
// thread at a time, with TBB's task hand-off as the memory barrier); construct and destroy it
// outside the graph. Linger is set so close never hangs. PUB drops messages for a subscriber
// whose queue reached send_high_water_mark (ZeroMQ's policy, per subscriber; subscribers see the
// gap in seq); a failed send is counted, never retried, never blocking.
//
// publish.immediate sets ZMQ_IMMEDIATE. libzmq sets TCP_NODELAY on every TCP socket it opens
// (src/tcp.cpp, tune_tcp_socket, called for accepted and connected sockets alike): one small
// message per chunk is never held back by Nagle; tested on a live connection.
//
// Access: a tcp:// endpoint on a non-loopback interface needs publish.allow_remote (the
// constructor refuses otherwise, as preflight does). With publish.curve_secret_key_file the socket
// is a CURVE server (libzmq's CurveZMQ, http://curvezmq.org): traffic is encrypted and a client
// must know the server's public key. With publish.curve_clients_dir as well, the publisher runs a
// ZAP handler (ZeroMQ RFC 27) on its own thread ("sf-zap"), which owns the inproc REP socket and
// admits only clients whose public key is in that folder (read once, at construction); refused
// handshakes are counted (PublishStats::refused_clients). The handler stops and is joined in the
// destructor, before the context can be closed.
//
// Subscribers: a SubscriberMonitor (pipeline/subscriber_monitor.h, its own thread "sf-submon")
// counts the peers whose handshake succeeded (with CURVE: only those the handshake and ZAP
// admitted), readable from any thread; each change is logged ("publish: subscriber joined (N
// connected)"). It is started before the bind and stopped in the destructor, before the socket
// closes.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include "core/prediction.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/subscriber_monitor.h"

namespace spikeflow::pipeline {

struct PublishStats {
  uint64_t sent = 0;
  uint64_t send_failures = 0;
  uint64_t refused_clients = 0;  ///< CURVE handshakes the ZAP handler refused (key not authorised)
};

/// Whether a ZeroMQ endpoint is reachable from this host only: ipc://, inproc://, or tcp:// on
/// 127.x, ::1, localhost or lo. "*", 0.0.0.0, a LAN address or interface name are not.
bool endpoint_is_loopback(const std::string& endpoint);

/// A CURVE key file's z85 text (40 characters; surrounding whitespace ignored). Throws
/// std::runtime_error naming what (the config key) and the file when it is missing or malformed.
std::string read_curve_key_file(const std::string& path, const std::string& what);

/// Whether this libzmq was built with CURVE (zmq_has("curve")).
bool curve_available();

/// realtime.affinity.zmq_io (ZMQ_THREAD_AFFINITY_CPU_ADD) and realtime.sched_fifo_priority
/// (ZMQ_THREAD_SCHED_POLICY / ZMQ_THREAD_PRIORITY) on context, for the I/O threads libzmq starts
/// with its first socket: call it before any socket exists. libzmq applies these on its own
/// threads and aborts the process when that fails, so call it only with a config that passed
/// check_realtime() (pipeline/realtime.h). Throws RealtimeError naming the key when libzmq refuses
/// an option.
void configure_io_threads(zmq::context_t& context, const RealtimeConfig& config);

class ZmqPublisher {
 public:
  /// Binds config.endpoint (throws std::runtime_error naming the key on failure: a bind error, a
  /// remote endpoint without allow_remote, an unreadable key, no CURVE in this libzmq).
  ZmqPublisher(zmq::context_t& context, const PublishConfig& config);
  ZmqPublisher(const ZmqPublisher&) = delete;
  ZmqPublisher& operator=(const ZmqPublisher&) = delete;

  /// Stamps p.timing.publish_ns, encodes and sends without blocking.
  void publish(core::Prediction& p);
  /// Sends an arbitrary (topic, text) message, e.g. periodic stats JSON.
  void publish_text(const std::string& topic, const std::string& text);

  /// ZMQ_IMMEDIATE as the socket reports it (publish.immediate).
  bool immediate() const { return socket_.get(zmq::sockopt::immediate); }
  /// The endpoint actually bound (resolves tcp://host:* wildcards).
  std::string endpoint() const { return endpoint_; }
  /// A copy; refused_clients is read atomically, the rest under the thread contract above.
  PublishStats stats() const {
    PublishStats s = stats_;
    s.refused_clients = refused_clients_.load(std::memory_order_relaxed);
    return s;
  }
  /// Subscribers connected now (see pipeline/subscriber_monitor.h for what counts). Any thread.
  size_t subscribers() const { return monitor_->subscribers(); }
  /// Blocks until at least n subscribers are connected or timeout passes; whether they are.
  /// Any thread. A SUB counted here sends its SUBSCRIBE next: see the header above for the hop.
  bool wait_for_subscribers(size_t n, std::chrono::milliseconds timeout) const {
    return monitor_->wait_for_subscribers(n, timeout);
  }

 private:
  void send(const void* data, size_t size);
  void start_zap(zmq::context_t& context, const std::string& clients_dir);

  zmq::socket_t socket_;
  std::string topic_;
  bool json_;
  std::string endpoint_;
  std::vector<uint8_t> buffer_;
  std::string text_;
  PublishStats stats_;
  // Declared after socket_: stopped before the socket closes.
  std::unique_ptr<SubscriberMonitor> monitor_;
  // ZAP handler (only with curve_clients_dir). Declared last: a jthread, so it is stopped and
  // joined first, by the destructor or by a constructor that throws after starting it.
  std::atomic<uint64_t> refused_clients_{0};  // written by the ZAP thread
  std::jthread zap_thread_;
};

}  // namespace spikeflow::pipeline
