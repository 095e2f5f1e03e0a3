// SubscriberMonitor: how many subscribers a PUB socket has, seen from the publishing side. Used by
// ZmqPublisher (pipeline/zmq_publisher.h) and TransportFloorRelay (pipeline/transport_floor.h), so
// that a harness can start its data only once its subscriber has joined, instead of sleeping.
//
// How: libzmq's socket monitor (zmq_socket_monitor, event format v1; libzmq 4.3.4 in Debian
// bookworm) publishes the socket's connection events on an inproc PAIR socket; a thread of this
// class ("sf-submon") owns the other end and counts
//   ZMQ_EVENT_HANDSHAKE_SUCCEEDED  a ZMTP 3 peer finished its handshake (with CURVE: after the
//                                  ZAP handler admitted it): +1
//   ZMQ_EVENT_HANDSHAKE_FAILED_*   a peer that will never be a subscriber (wrong CURVE key, key
//                                  refused by ZAP, wrong mechanism, gone mid-handshake): not
//                                  counted; its DISCONNECTED, which follows, is matched to it
//   ZMQ_EVENT_DISCONNECTED         a connection ended: -1, unless it is a failed handshake's
// libzmq emits DISCONNECTED for every engine error, handshaken or not, and HANDSHAKE_SUCCEEDED
// carries no file descriptor (src/stream_engine_base.cpp), so a disconnect cannot be tied to its
// handshake; the count is kept as succeeded - (disconnected - failed). It is exact once events
// settle; while a refused peer's FAILED and DISCONNECTED straddle a subscriber leaving, it can
// read one too high for that moment. Known limit: a peer that speaks no ZMTP 3 (garbage, a port
// scanner sending bytes) is dropped by libzmq 4.3.4 with a DISCONNECTED and no FAILED event, so
// it takes one off the count (never below 0). Loopback harnesses (the profile) never see one.
//
// What "joined" promises: the peer's handshake is done, and its SUBSCRIBE frames are the next
// thing it sends on that connection (a SUB sends them once its own handshake completes, which is
// at most one loopback hop after ours). A message published in that hop can still be missed; a
// caller that needs the first message delivered must publish it later than that (the profile
// does: pipeline/profile_experiment.cpp, run_children).
//
// Thread contract: construct and destroy on the thread that owns the monitored socket (libzmq
// sockets are not thread-safe); the constructor must run before the socket binds or connects, so
// that no connection escapes the count, and the destructor while the socket is still open.
// subscribers() and wait_for_subscribers() may be called from any thread, concurrently.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <zmq.hpp>

namespace spikeflow::pipeline {

class SubscriberMonitor {
 public:
  /// Called on the monitor thread after each change of the count, with the new count and whether
  /// it went up (a subscriber joined) or down. Must be quick; an exception is logged and dropped.
  using OnChange = std::function<void(size_t subscribers, bool joined)>;

  /// Starts monitoring `socket` (of `context`). `what` names the owner in errors and logs
  /// ("publish", "floor relay"). Throws std::runtime_error naming `what` if libzmq refuses.
  SubscriberMonitor(zmq::context_t& context, zmq::socket_t& socket, std::string what,
                    OnChange on_change = {});
  /// Stops the monitor (the socket must still be open) and joins the thread: it leaves at once on
  /// libzmq's MONITOR_STOPPED event, or at the latest within one 100 ms poll.
  ~SubscriberMonitor();
  SubscriberMonitor(const SubscriberMonitor&) = delete;
  SubscriberMonitor& operator=(const SubscriberMonitor&) = delete;

  /// Subscribers connected now (handshake done, not yet disconnected). Any thread.
  size_t subscribers() const;
  /// Blocks (on a condition variable) until at least n subscribers are connected or timeout
  /// passes; returns whether n were reached. Any thread.
  bool wait_for_subscribers(size_t n, std::chrono::milliseconds timeout) const;

 private:
  void run(zmq::socket_t events);
  void apply(uint16_t event);

  zmq::socket_t& socket_;
  std::string what_;
  OnChange on_change_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  size_t subscribers_ = 0;     // guarded by mutex_
  size_t failed_pending_ = 0;  // monitor thread only: failed handshakes whose DISCONNECTED is due
  std::atomic<bool> stop_{false};
  std::thread thread_;  // last: started when everything above exists
};

}  // namespace spikeflow::pipeline
