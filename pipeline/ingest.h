// Ingest: the live pipeline's network edge. Each implementation owns a Boost.Asio io_context and
// its sockets on one named thread, decodes what arrives with a stages/ decoder (malformed input
// counted by reason and dropped) and hands every accepted EventBatch to the sink on that thread.
// The sink must not block (the pipeline's is a tbb::flow try_put). The loop catches and logs
// exceptions; handlers treat operation_aborted as shutdown; stop() closes the sockets, joins the
// thread and is idempotent. Binds to the configured address (127.0.0.1 by default).
// Access: only sources in ingest.allow (allowed_sources()) are served; a datagram from any other
// source is dropped before decoding (IngestStats::refused_source), a TCP connection from one is
// closed right after accept (IngestStats::refused_connections); both logged rate-limited.
// Busy poll (udp, ingest.busy_poll_us): after each datagram the thread keeps reading without
// blocking until that long passes with nothing new (at most 256 datagrams, then back to the io
// loop), so a burst's next packet is taken without a wake-up; how many it took is logged at stop.
//
//   transport udp: format native (stages/native_packet.h) or blackrock (stages/blackrock_packet.h)
//   transport tcp: format native (length-prefixed, stages/native_stream_framer.h) or intan
//                  (stages/intan_spike_stream.h); any number of peers, each with its own decoder;
//                  a peer that disconnects may reconnect (counted). With ingest.connect set,
//                  TCP ingest is a client instead: it connects to that host:port (Intan RHX is
//                  itself the server, spike port 5002), and reconnects with backoff after a failed
//                  attempt or a disconnect (IngestStats::connections / disconnects /
//                  connect_failures).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "core/event_batch.h"
#include "pipeline/cidr_set.h"
#include "pipeline/pipeline_config.h"
#include "stages/native_packet_decoder.h"

namespace spikeflow::pipeline {

class Ingest {
 public:
  using Sink = std::function<void(core::EventBatch&)>;
  /// Runs first on the receive thread (its realtime settings, pipeline/realtime.h); an exception
  /// from it makes start() throw it, with no thread left running.
  using ThreadSetup = std::function<void()>;
  virtual ~Ingest() = default;
  /// Starts the receive thread (see ThreadSetup).
  virtual void start() = 0;
  /// Stops receiving and joins the thread; the sink is never called after it returns.
  virtual void stop() = 0;
  /// The bound port (useful with port 0); 0 after stop().
  virtual uint16_t port() const = 0;
  /// Totals of every decoder's counters; any thread.
  virtual stages::IngestStats stats() const = 0;
};

/// The sources config accepts: config.allow parsed, or loopback only when it is empty. Throws
/// std::runtime_error naming ingest.allow and the bad entry.
CidrSet allowed_sources(const IngestConfig& config);

/// Opens and binds the configured transport (throws std::runtime_error naming the address).
/// setup runs first on the receive thread (may be empty).
std::unique_ptr<Ingest> make_ingest(const IngestConfig& config, Ingest::Sink sink,
                                    Ingest::ThreadSetup setup = {});

}  // namespace spikeflow::pipeline
