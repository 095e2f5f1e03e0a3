#include "pipeline/subscriber_monitor.h"

#include <pthread.h>

#include <cstring>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace spikeflow::pipeline {

namespace {

constexpr int kEvents = ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                        ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                        ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_MONITOR_STOPPED;
constexpr int kFailed = ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                        ZMQ_EVENT_HANDSHAKE_FAILED_AUTH;
// How often the thread looks at stop_ when no event comes: the fallback should libzmq's
// MONITOR_STOPPED event not arrive; it bounds the destructor's wait.
constexpr std::chrono::milliseconds kStopPoll{100};

}  // namespace

SubscriberMonitor::SubscriberMonitor(zmq::context_t& context, zmq::socket_t& socket,
                                     std::string what, OnChange on_change)
    : socket_(socket), what_(std::move(what)), on_change_(std::move(on_change)) {
  // One inproc name per monitor in the process (inproc names are per context; unique is simpler).
  static std::atomic<uint64_t> counter{0};
  const std::string endpoint = fmt::format("inproc://spikeflow.subscriber-monitor.{}", counter++);
  if (zmq_socket_monitor(socket_.handle(), endpoint.c_str(), kEvents) != 0) {
    throw std::runtime_error(fmt::format("{}: cannot monitor the socket's subscribers: {}", what_,
                                         zmq_strerror(zmq_errno())));
  }
  // Connected here, before the monitored socket binds, so no event can be sent before a reader
  // exists; from then on the thread owns this socket (thread start is the hand-off barrier).
  zmq::socket_t events(context, zmq::socket_type::pair);
  events.set(zmq::sockopt::linger, 0);
  try {
    events.connect(endpoint);
  } catch (const zmq::error_t& e) {
    zmq_socket_monitor(socket_.handle(), nullptr, 0);
    throw std::runtime_error(
        fmt::format("{}: cannot monitor the socket's subscribers: {}", what_, e.what()));
  }
  thread_ = std::thread([this, events = std::move(events)]() mutable { run(std::move(events)); });
}

SubscriberMonitor::~SubscriberMonitor() {
  // On the socket's own thread: libzmq sends MONITOR_STOPPED and closes its end.
  zmq_socket_monitor(socket_.handle(), nullptr, 0);
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

size_t SubscriberMonitor::subscribers() const {
  std::lock_guard lock(mutex_);
  return subscribers_;
}

bool SubscriberMonitor::wait_for_subscribers(size_t n, std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, [&] { return subscribers_ >= n; });
}

void SubscriberMonitor::apply(uint16_t event) {
  size_t now = 0;
  bool joined = false;
  {
    std::lock_guard lock(mutex_);
    if (event == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
      ++subscribers_;
      joined = true;
    } else if ((event & kFailed) != 0) {
      ++failed_pending_;
      return;
    } else if (event == ZMQ_EVENT_DISCONNECTED) {
      if (failed_pending_ > 0) {
        --failed_pending_;  // the failed handshake's own disconnect: it was never counted
        return;
      }
      if (subscribers_ == 0) return;  // a non-ZMTP peer dropped (see the header)
      --subscribers_;
    } else {
      return;
    }
    now = subscribers_;
  }
  changed_.notify_all();
  if (on_change_) {
    try {
      on_change_(now, joined);
    } catch (const std::exception& e) {
      spdlog::error("{}: subscriber count callback: {}", what_, e.what());
    }
  }
}

void SubscriberMonitor::run(zmq::socket_t events) {
  pthread_setname_np(pthread_self(), "sf-submon");
  while (!stop_.load()) {
    try {
      zmq::pollitem_t items[] = {{events.handle(), 0, ZMQ_POLLIN, 0}};
      if (zmq::poll(items, 1, kStopPoll) <= 0) continue;
      // Event format v1 (zmq_socket_monitor(3)): a frame of uint16 event + uint32 value, in host
      // byte order, then a frame with the endpoint.
      zmq::message_t head, address;
      if (!events.recv(head, zmq::recv_flags::dontwait)) continue;
      if (head.more()) (void)events.recv(address, zmq::recv_flags::dontwait);
      if (head.size() < sizeof(uint16_t)) continue;
      uint16_t event = 0;
      std::memcpy(&event, head.data(), sizeof event);
      if (event == ZMQ_EVENT_MONITOR_STOPPED) break;
      apply(event);
    } catch (const zmq::error_t& e) {
      if (e.num() == ETERM) break;  // the context is terminating: nothing more will come
      spdlog::error("{}: subscriber monitor: {} (continuing)", what_, e.what());
    }
  }
}

}  // namespace spikeflow::pipeline
