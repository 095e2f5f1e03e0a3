// LivePipeline: the real-time engine. Declares the one graph a chunk flows through
//
//   UdpIngest ──▶ binner ──▶ tokenizer ──▶ decoder ──▶ publisher ──▶ ZeroMQ
//   ticker ─────▶ (deadline ticks)                     └─▶ metrics (latency histograms)
//
// and owns every thread and socket involved: the ingest thread (Boost.Asio), a ticker thread
// that drives chunk deadlines, the tbb::flow graph, and the ZeroMQ context. Stages are plain
// classes from stages/. Binner, tokenizer, decoder and publisher run as serial nodes, so chunks
// stay in order; the decoder drains every pending chunk in one batched call when it fell behind
// (catch-up), so no chunk is skipped.
// Lifecycle: construct (binds sockets, throws on any setup error) → start() → stop(). stop()
// follows the fixed order: stop ingest, stop ticker, flush the binner (end-of-stream chunks),
// wait_for_all(), close sockets and the context. Safe to call from any one control thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "core/latency_histogram.h"
#include "models/streaming_decoder.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/recorder.h"
#include "pipeline/zmq_publisher.h"
#include "stages/binner.h"
#include "stages/decode_stage.h"
#include "stages/native_packet_decoder.h"
#include "stages/tokenizer.h"

namespace spikeflow::pipeline {

/// Snapshot of every counter and latency histogram, for reports and tests.
struct PipelineStats {
  stages::IngestStats ingest;
  stages::BinnerStats binner;
  stages::TokenizerStats tokenizer;
  stages::DecodeStats decode;
  PublishStats publish;
  RecorderStats recorder;
  uint64_t predictions = 0;
  uint64_t backlog_shed = 0;           ///< chunks whose tokens were shed at the decoder's bound
  uint64_t out_of_order = 0;           ///< must stay 0: a publish seq that did not follow the last
  int64_t last_seq = -1;
  core::LatencyHistogram close_latency;     ///< trigger arrival -> chunk closed
  core::LatencyHistogram queue_latency;     ///< closed -> decode start
  core::LatencyHistogram decode_latency;    ///< decode start -> end
  core::LatencyHistogram publish_latency;   ///< decode end -> published
  core::LatencyHistogram total_latency;     ///< trigger arrival -> published
};

/// Optional hooks and modes. Taps run on graph threads, in chunk order: they must be quick and
/// must not block (hand heavy work, e.g. file writes, to a thread of their own).
struct LiveOptions {
  /// Called for every accepted packet, on the binner node, before binning.
  std::function<void(const core::EventBatch&)> on_batch;
  /// Called for every published prediction, on the publisher node, after publishing.
  std::function<void(const core::Prediction&)> on_prediction;
  /// No ticker thread: chunk deadlines advance only through tick() (replay on a virtual clock).
  bool external_ticks = false;
  /// Exact replay: how many chunks, starting at this seq, the decoder must decode in one call
  /// (as recorded live). Unset: whatever is pending, up to decoder.max_batch.
  std::function<size_t(int64_t first_seq)> decode_group_size;
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
  /// caller serialises its own calls. Returns immediately (the graph queues it).
  void push(core::EventBatch batch);
  /// Virtual-clock deadline tick (with LiveOptions::external_ticks).
  void tick(int64_t host_ns);
  /// Blocks until fewer than max_in_flight pushed packets wait for the binner and fewer than
  /// max_in_flight chunks are between the binner and the publisher (backpressure for
  /// as-fast-as-possible replay, so replay never trips the decoder's backlog bound).
  void wait_in_flight_below(uint64_t max_in_flight);

  uint16_t ingest_port() const;
  std::string publish_endpoint() const;
  PipelineStats stats() const;

  /// Test hook: makes the decoder node sleep this long before its next decode (catch-up tests).
  void stall_decoder_once(int64_t ns);

 private:
  struct Impl;
  struct Graph;
  std::unique_ptr<Impl> impl_;
};

/// One JSON object with every counter and each stage's latency percentiles (the stats topic).
std::string stats_json(const PipelineStats& s);

/// Multi-line human-readable report of a stats snapshot (counters by reason, latency table).
std::string format_report(const PipelineStats& s);

}  // namespace spikeflow::pipeline
