// LivePipeline: the real-time engine. Declares the one graph a chunk flows through
//
//   ingest, ticker ─▶ binner ─▶ tokenizer ─▶ decoder ═▶ decoder thread ─▶ publisher ─▶ ZeroMQ
//                       │                                                     │
//                       ▼                                                     ▼
//               recorder, on_batch                         recorder, on_prediction, metrics
//
// (live_pipeline.cpp, LivePipeline::Graph, declares it in one block) and owns every thread and
// socket involved: the ingest thread (Boost.Asio), a ticker thread that drives chunk deadlines,
// the decoder thread (pipeline/decoder_thread.h), the tbb::flow graph's workers, and the ZeroMQ
// context. Stages are plain classes from stages/. Every node is serial, so chunks stay in order,
// and lightweight: its body runs inline on the thread that hands it its input when it is free
// (else the input waits in the node's queue for a graph worker). So a packet is binned and
// tokenized on the ingest thread that received it, and the decoder node, an async_node, hands the
// chunk to the decoder thread, which decodes and publishes it: one hand-off between the packet
// and the ZeroMQ send, and the decoder always on the same thread, so its caches stay warm and the
// warm-up before a chunk (decoder.warmup_margin_us) warms the core that steps. A slow decode never
// holds up the binner: it runs on the decoder thread. The decoder's inbox
// (pipeline/decoder_inbox.h) bounds its backlog and, when it fell behind, hands it every pending
// chunk for one batched call (catch-up), so no chunk is skipped.
// Real-time knobs (pipeline/realtime.h): the ingest, ticker and decoder threads take their
// affinity and SCHED_FIFO on themselves before they run (a failure fails start()), the graph's
// TBB workers when they first enter its arena, ZeroMQ's I/O threads through context options; the
// constructor checks them all first and does realtime.mlockall.
// Lifecycle: construct (binds sockets, throws on any setup error) → start() → stop(). stop()
// follows the fixed order: stop ingest, stop ticker, flush the binner (end-of-stream chunks),
// wait_for_all() (which includes the decoder thread's work), stop the decoder thread, close
// sockets and the context. Safe to call from any one control thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/event_batch.h"
#include "core/prediction.h"
#include "models/streaming_decoder.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/stats_report.h"

namespace spikeflow::pipeline {

/// Optional hooks and modes. The callbacks are taps: they run in order, after the data was handed
/// on (on_batch on the thread that binned the packet, on_prediction on the decoder thread right
/// after the publish); they must be quick and must not block (hand heavy work, e.g. file writes,
/// to a thread of their own). An exception from one is caught, counted
/// (PipelineStats::tap_errors) and logged.
struct LiveOptions {
  /// Called for every accepted packet, in the binner's order, once the binner has taken it.
  std::function<void(const core::EventBatch&)> on_batch;
  /// Called for every published prediction, in seq order, after it is published.
  std::function<void(const core::Prediction&)> on_prediction;
  /// No ticker thread: chunk deadlines advance only through tick() (replay on a virtual clock).
  bool external_ticks = false;
  /// Exact replay: how many chunks, starting at this seq, the decoder must decode in one call
  /// (as recorded live). Unset: whatever is pending, up to decoder.max_batch.
  std::function<size_t(const core::TokenChunk& first)> decode_group_size;
  /// Identity of the decoder's checkpoint, written into recordings.
  std::string model_identity;
};

class LivePipeline {
 public:
  /// With config.ingest.transport "none" no socket is opened: events come in through push().
  LivePipeline(const PipelineConfig& config, std::unique_ptr<models::StreamingDecoder> decoder,
               LiveOptions options = {});
  ~LivePipeline();
  LivePipeline(const LivePipeline&) = delete;
  LivePipeline& operator=(const LivePipeline&) = delete;

  void start();
  /// Drains and stops (see the file comment). Idempotent.
  void stop();

  /// In-process input (replay): hands one packet's events to the binner. Any thread; the
  /// caller serialises its own calls. Bins and tokenizes on the caller's thread (microseconds;
  /// queued for a graph worker when the binner is busy), never waits for the decoder.
  void push(core::EventBatch batch);
  /// Virtual-clock deadline tick (with LiveOptions::external_ticks).
  void tick(int64_t host_ns);
  /// Blocks until fewer than max_in_flight pushed packets wait for the binner and fewer than
  /// max_in_flight chunks are between the binner and the publisher (backpressure for
  /// as-fast-as-possible replay, so replay never trips the decoder's backlog bound).
  void wait_in_flight_below(uint64_t max_in_flight);

  uint16_t ingest_port() const;
  std::string publish_endpoint() const;
  /// Snapshot of every counter; any thread.
  PipelineStats stats() const;
  /// Blocks until the publisher has at least n subscribers (handshake done; their SUBSCRIBE is
  /// next on the wire, pipeline/subscriber_monitor.h) or timeout passes; whether it has. Any
  /// thread, not concurrently with stop(); false after stop(). Throws std::logic_error when
  /// publish.enabled is false (no publisher to wait on).
  bool wait_for_subscribers(size_t n, std::chrono::milliseconds timeout) const;

 private:
  struct Impl;
  struct Graph;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spikeflow::pipeline
