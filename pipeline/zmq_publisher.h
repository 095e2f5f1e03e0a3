// ZmqPublisher: the live pipeline's output edge, a ZeroMQ PUB socket sending one multipart
// message (topic, payload; stages/prediction_codec.h) per prediction.
// Thread contract: the socket is used only from the pipeline's serial publisher node (one
// thread at a time, with TBB's task hand-off as the memory barrier); construct and destroy it
// outside the graph. Linger is set so close never hangs. PUB drops messages for a subscriber
// whose queue reached send_high_water_mark (ZeroMQ's policy, per subscriber; subscribers see the
// gap in seq); a failed send is counted, never retried, never blocking.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <zmq.hpp>

#include "core/prediction.h"
#include "pipeline/pipeline_config.h"

namespace spikeflow::pipeline {

struct PublishStats {
  uint64_t sent = 0;
  uint64_t send_failures = 0;
};

class ZmqPublisher {
 public:
  /// Binds config.endpoint (throws std::runtime_error naming it on failure).
  ZmqPublisher(zmq::context_t& context, const PublishConfig& config);

  /// Stamps p.timing.publish_ns, encodes and sends without blocking.
  void publish(core::Prediction& p);
  /// Sends an arbitrary (topic, text) message, e.g. periodic stats JSON.
  void publish_text(const std::string& topic, const std::string& text);

  /// The endpoint actually bound (resolves tcp://host:* wildcards).
  std::string endpoint() const { return endpoint_; }
  const PublishStats& stats() const { return stats_; }

 private:
  void send(const void* data, size_t size);

  zmq::socket_t socket_;
  std::string topic_;
  bool json_;
  std::string endpoint_;
  std::vector<uint8_t> buffer_;
  std::string text_;
  PublishStats stats_;
};

}  // namespace spikeflow::pipeline
