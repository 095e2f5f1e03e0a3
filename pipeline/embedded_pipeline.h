// EmbeddedPipeline: the live pipeline inside another program's process (a rig's task code, a
// BRAND-style node, the Python module), delivering each prediction to a callback instead of (or
// as well as) a ZeroMQ socket. A thin owner of one LivePipeline (pipeline/live_pipeline.h): same
// graph, same stages, same shutdown order; it adds loading and checking the checkpoint and turns
// the publisher off unless asked for.
//
//   spikeflow::pipeline::EmbeddedPipeline p(spikeflow::pipeline::load_pipeline_config("live.yaml"),
//                                           [](const spikeflow::core::Prediction& pr) { ... });
//   p.start();   // ingest as configured (UDP/TCP), or push() with ingest.transport: none
//   ...
//   p.stop();    // drains: every chunk already binned is decoded and delivered
//
// Thread contract: construct, start(), stop() and push() from the embedding program's threads
// (push() calls serialised by the caller; push() bins and tokenizes on the calling thread);
// on_prediction runs on the pipeline's decoder thread, in seq order,
// one call at a time, after the prediction is decoded. It must be quick and must not block
// (it delays the next prediction's delivery, not the decode); an exception from it is caught,
// counted in stats().tap_errors and logged.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/event_batch.h"
#include "core/prediction.h"
#include "core/unit_map.h"
#include "models/streaming_decoder.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/stats_report.h"

namespace spikeflow::pipeline {

class LivePipeline;

using PredictionCallback = std::function<void(const core::Prediction&)>;

struct EmbeddedOptions {
  /// Keep the ZeroMQ publisher as configured (publish.*) next to the callback. Off: no socket is
  /// opened on the output side, whatever publish.enabled says.
  bool publish = false;
  /// Called for every packet the binner accepts (optional; same contract as on_prediction).
  std::function<void(const core::EventBatch&)> on_batch;
};

class EmbeddedPipeline {
 public:
  /// Loads config.decoder.checkpoint and checks config and checkpoint together (every problem at
  /// once: throws ConfigError / std::runtime_error naming the key or the file), then builds the
  /// graph and binds ingest's socket. Nothing runs before start().
  EmbeddedPipeline(PipelineConfig config, PredictionCallback on_prediction,
                   EmbeddedOptions options = {});
  /// With a decoder the caller already holds (config.decoder.checkpoint is not read).
  EmbeddedPipeline(PipelineConfig config, std::unique_ptr<models::StreamingDecoder> decoder,
                   PredictionCallback on_prediction, EmbeddedOptions options = {});
  ~EmbeddedPipeline();  ///< stop()s
  EmbeddedPipeline(const EmbeddedPipeline&) = delete;
  EmbeddedPipeline& operator=(const EmbeddedPipeline&) = delete;

  void start();
  /// In-process input (ingest.transport: none): one packet's events, device ns. Returns at once.
  void push(core::EventBatch batch);
  /// Drains and stops: ingest, ticker, end-of-stream flush, wait for the graph. Idempotent.
  void stop();

  /// The model's unit map (model unit i = units()[i]), output width and description.
  const std::vector<core::UnitKey>& units() const { return units_; }
  int output_dim() const { return output_dim_; }
  const std::string& decoder_description() const { return description_; }
  int64_t chunk_width_ns() const;
  /// Bound ingest port (0 with transport none); "none" when publishing is off.
  uint16_t ingest_port() const;
  std::string publish_endpoint() const;
  PipelineStats stats() const;

 private:
  std::vector<core::UnitKey> units_;
  int output_dim_ = 0;
  std::string description_;
  int64_t width_ns_ = 0;
  std::unique_ptr<LivePipeline> live_;
};

}  // namespace spikeflow::pipeline
