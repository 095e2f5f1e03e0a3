// CURVE in the publisher's tests: a fresh key pair, a server's key files with its clients folder,
// and a SUB socket set up as a CURVE client of a server key (or plain when the server key is
// empty).
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>
#include <zmq.hpp>

#include "tests/common/test_support.h"

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

/// A CURVE server's files in dir: its secret key (server.key_secret) and a clients/ folder with
/// each client's public key in NAME.key (publish.curve_secret_key_file, .curve_clients_dir).
struct CurveServerFiles {
  std::string secret_key_file, clients_dir;
};
inline CurveServerFiles write_curve_server(
    const TempDir& dir, const CurveKeyPair& server,
    const std::vector<std::pair<std::string, const CurveKeyPair*>>& clients) {
  CurveServerFiles f{dir.file("server.key_secret"), dir.file("clients")};
  std::ofstream(f.secret_key_file) << server.secret_key << "\n";
  std::filesystem::create_directories(f.clients_dir);
  for (const auto& [name, keys] : clients)
    std::ofstream(dir.file("clients/" + name + ".key")) << keys->public_key << "\n";
  return f;
}

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
