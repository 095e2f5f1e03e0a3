// Runs spikeflow's live pipeline inside this process and takes its predictions through a callback
// (no ZeroMQ hop: the publisher binds an inproc:// endpoint nobody reads). The decoder is a
// hand-made ridge model whose output is each chunk's spike count per unit, so the expected sums are
// known. Prints one summary line; exit code 0 only when every spike came back as a count.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <vector>

#include "core/event_batch.h"
#include "models/ridge_decoder.h"
#include "pipeline/live_pipeline.h"
#include "pipeline/pipeline_config.h"

int main() {
  using namespace spikeflow;
  pipeline::PipelineConfig cfg = pipeline::parse_pipeline_config("", "built-in defaults");
  cfg.ingest.transport = pipeline::Transport::kNone;
  cfg.publish.endpoint = "inproc://consumer";
  cfg.metrics.print_interval_s = 0;
  const int64_t width = cfg.chunking.width_ns;
  const std::vector<core::UnitKey> units{{1, 1}, {2, 1}};
  // history 1, identity weights: output d = spikes of unit d in the chunk.
  auto decoder = std::make_unique<models::RidgeDecoder>(
      units, 2, std::vector<std::string>{"u1", "u2"}, width, 1, std::vector<float>{1, 0, 0, 1},
      std::vector<float>{0, 0});
  std::mutex mu;
  double sum[2] = {0, 0};
  size_t predictions = 0;
  pipeline::LiveOptions options;
  options.external_ticks = true;
  options.on_prediction = [&](const core::Prediction& p) {
    std::lock_guard<std::mutex> lock(mu);
    ++predictions;
    sum[0] += p.values[0];
    sum[1] += p.values[1];
  };
  pipeline::LivePipeline live(cfg, std::move(decoder), options);
  live.start();
  // 20 chunks; unit 1 fires twice per chunk, unit 2 once.
  const int chunks = 20;
  for (int c = 0; c < chunks; ++c) {
    core::EventBatch b;
    const int64_t t0 = c * width;
    b.events = {{t0 + 1, 1, 1, 0}, {t0 + 2, 2, 1, 0}, {t0 + width / 2, 1, 1, 0}};
    b.device_time_ns = t0 + width;
    live.push(std::move(b));
  }
  live.stop();
  std::lock_guard<std::mutex> lock(mu);
  std::printf("consumer: %zu predictions, unit sums %.0f %.0f\n", predictions, sum[0], sum[1]);
  const bool ok = predictions >= static_cast<size_t>(chunks) && std::lround(sum[0]) == 2 * chunks &&
                  std::lround(sum[1]) == chunks;
  return ok ? 0 : 1;
}
