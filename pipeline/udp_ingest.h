// UdpIngest: the live pipeline's network edge for the native format over UDP.
// Owns a Boost.Asio io_context and socket on its own named thread ("sf-ingest"); each datagram is
// decoded (stages::NativePacketDecoder: malformed ones counted by reason and dropped) and the
// accepted EventBatch handed to the sink on that thread. The sink must not block (the pipeline's
// sink is a tbb::flow try_put). The loop catches and logs exceptions; stop() closes the socket,
// joins the thread, and is idempotent. Binds to the configured address (127.0.0.1 by default).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "core/event_batch.h"
#include "pipeline/pipeline_config.h"
#include "stages/native_packet_decoder.h"

namespace spikeflow::pipeline {

class UdpIngest {
 public:
  using Sink = std::function<void(core::EventBatch&)>;

  /// Opens and binds the socket (throws std::runtime_error naming the address on failure).
  UdpIngest(const IngestConfig& config, Sink sink);
  ~UdpIngest();
  UdpIngest(const UdpIngest&) = delete;
  UdpIngest& operator=(const UdpIngest&) = delete;

  /// Starts the receive thread.
  void start();
  /// Stops receiving and joins the thread. After it returns the sink is never called again.
  void stop();

  /// The bound port (useful with port 0).
  uint16_t port() const;
  /// Snapshot of the decoder's counters; any thread.
  stages::IngestStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spikeflow::pipeline
