// A real ZeroMQ SUB socket on the publisher's prediction topic, decoding each message with the
// production codec (stages/prediction_codec.h), as a client on the other side of the wire does.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <zmq.hpp>

#include "core/prediction.h"
#include "stages/prediction_codec.h"

namespace spikeflow::testing {

class ZmqSubscriber {
 public:
  /// receive_hwm and receive_buffer_bytes set ZMQ_RCVHWM and ZMQ_RCVBUF; 0 keeps ZeroMQ's default.
  explicit ZmqSubscriber(const std::string& endpoint, const std::string& topic = "pred",
                         int receive_hwm = 0, int receive_buffer_bytes = 0) {
    sock_.set(zmq::sockopt::linger, 0);
    if (receive_hwm > 0) sock_.set(zmq::sockopt::rcvhwm, receive_hwm);
    if (receive_buffer_bytes > 0) sock_.set(zmq::sockopt::rcvbuf, receive_buffer_bytes);
    sock_.set(zmq::sockopt::subscribe, topic);
    sock_.connect(endpoint);
  }

  /// Next raw message (topic, payload), or false when none arrives before the timeout.
  bool next_raw(std::string& topic, std::string& payload, std::chrono::milliseconds timeout) {
    zmq::pollitem_t items[] = {{sock_.handle(), 0, ZMQ_POLLIN, 0}};
    if (zmq::poll(items, 1, timeout) <= 0) return false;
    zmq::message_t t, p;
    if (!sock_.recv(t) || !sock_.recv(p)) return false;
    topic = t.to_string();
    payload = p.to_string();
    return true;
  }

  /// Next decoded prediction, or false when none arrives before the timeout. A payload that does
  /// not decode fails the test.
  bool next(core::Prediction& p, std::chrono::milliseconds timeout) {
    std::string topic, payload;
    if (!next_raw(topic, payload, timeout)) return false;
    std::string err;
    const bool ok = stages::decode_prediction(
        {reinterpret_cast<const uint8_t*>(payload.data()), payload.size()}, p, &err);
    EXPECT_TRUE(ok) << err;
    return ok;
  }

  zmq::socket_t& socket() { return sock_; }

 private:
  zmq::context_t ctx_{1};
  zmq::socket_t sock_{ctx_, zmq::socket_type::sub};
};

}  // namespace spikeflow::testing
