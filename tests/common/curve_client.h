// CURVE on the client side of the publisher's tests: a fresh key pair, and a SUB socket set up as
// a CURVE client of a server key (or plain when the server key is empty).
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <zmq.hpp>

namespace spikeflow::testing {

struct CurveKeyPair {
  std::string public_key, secret_key;  // z85
  CurveKeyPair() {
    char pub[41], sec[41];
    EXPECT_EQ(zmq_curve_keypair(pub, sec), 0);
    public_key = pub;
    secret_key = sec;
  }
};

/// Linger 0, CURVE client of server_key with its own keys (none when server_key is empty),
/// subscribed to topic, connected to endpoint.
inline void connect_curve_sub(zmq::socket_t& sock, const std::string& endpoint,
                              const std::string& server_key, const CurveKeyPair* own,
                              const std::string& topic = "pred") {
  sock.set(zmq::sockopt::linger, 0);
  if (!server_key.empty()) {
    sock.set(zmq::sockopt::curve_serverkey, server_key);
    sock.set(zmq::sockopt::curve_publickey, own->public_key);
    sock.set(zmq::sockopt::curve_secretkey, own->secret_key);
  }
  sock.set(zmq::sockopt::subscribe, topic);
  sock.connect(endpoint);
}

}  // namespace spikeflow::testing
