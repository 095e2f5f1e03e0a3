#include "pipeline/embedded_pipeline.h"

#include <stdexcept>
#include <utility>

#include "pipeline/live_pipeline.h"
#include "pipeline/preflight.h"
#include "pipeline/recorder.h"

namespace spikeflow::pipeline {

namespace {

PipelineConfig embedded_config(PipelineConfig config, const EmbeddedOptions& options) {
  if (!options.publish) config.publish.enabled = false;
  return config;
}

}  // namespace

EmbeddedPipeline::EmbeddedPipeline(PipelineConfig config, PredictionCallback on_prediction,
                                   EmbeddedOptions options)
    : EmbeddedPipeline(
          config,
          load_checked_decoder(embedded_config(config, options), "embedded pipeline config"),
          std::move(on_prediction), std::move(options)) {}

EmbeddedPipeline::EmbeddedPipeline(PipelineConfig config,
                                   std::unique_ptr<models::StreamingDecoder> decoder,
                                   PredictionCallback on_prediction, EmbeddedOptions options) {
  if (!decoder) throw std::invalid_argument("EmbeddedPipeline: no decoder");
  if (!on_prediction) throw std::invalid_argument("EmbeddedPipeline: no prediction callback");
  units_ = decoder->units();
  output_dim_ = decoder->output_dim();
  description_ = decoder->describe();
  width_ns_ = decoder->chunk_width_ns();
  LiveOptions lo;
  lo.on_prediction = std::move(on_prediction);
  lo.on_batch = std::move(options.on_batch);
  if (!config.decoder.checkpoint.empty())
    lo.model_identity = file_identity(config.decoder.checkpoint);
  live_ = std::make_unique<LivePipeline>(embedded_config(std::move(config), options),
                                         std::move(decoder), std::move(lo));
}

EmbeddedPipeline::~EmbeddedPipeline() = default;  // LivePipeline's destructor stops

void EmbeddedPipeline::start() { live_->start(); }
void EmbeddedPipeline::push(core::EventBatch batch) { live_->push(std::move(batch)); }
void EmbeddedPipeline::stop() { live_->stop(); }
int64_t EmbeddedPipeline::chunk_width_ns() const { return width_ns_; }
uint16_t EmbeddedPipeline::ingest_port() const { return live_->ingest_port(); }
std::string EmbeddedPipeline::publish_endpoint() const { return live_->publish_endpoint(); }
PipelineStats EmbeddedPipeline::stats() const { return live_->stats(); }

}  // namespace spikeflow::pipeline
