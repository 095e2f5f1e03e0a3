#include "pipeline/session_replay.h"

#include <algorithm>
#include <chrono>
#include <utility>

#include "core/time.h"
#include "pipeline/pacer.h"

namespace spikeflow::pipeline {

namespace {

/// Session time per pushed packet: as asked; else 5 ms when paced, and one chunk width as fast as
/// possible (fewer hand-offs).
int64_t packet_step_ns(const SessionReplayOptions& o, int64_t width_ns) {
  const double batch_ms = o.batch_ms > 0 ? o.batch_ms
                          : o.speed > 0  ? 5.0
                                         : static_cast<double>(width_ns) / core::kNsPerMs;
  return std::max<int64_t>(1, static_cast<int64_t>(batch_ms * core::kNsPerMs));
}

/// In-flight bound in chunks for as-fast-as-possible replay: a packet of step_ns closes up to
/// step_ns / width_ns chunks, so that at most ~4 decoder batches wait and the decoder's backlog
/// bound is never reached (nothing is shed).
uint64_t in_flight_bound(int64_t step_ns, int64_t width_ns, int max_batch) {
  const int64_t per_packet = (step_ns + width_ns - 1) / width_ns;
  return static_cast<uint64_t>(std::max<int64_t>(4, 4 * max_batch / per_packet));
}

}  // namespace

SessionReplayResult replay_session(const replay::Session& session, PipelineConfig config,
                                   std::unique_ptr<models::StreamingDecoder> decoder,
                                   const SessionReplayOptions& o) {
  config.ingest.transport = Transport::kNone;
  // As fast as possible runs on the session's clock alone: chunks close by watermark.
  config.chunking.deadline_enabled = o.speed > 0;
  const int64_t width = config.chunking.width_ns;
  const auto events = replay::merged_events(session, o.from_ns, o.to_ns);

  SessionReplayResult r;
  r.events = events.size();
  LiveOptions lo;
  lo.on_prediction = [&r](const core::Prediction& p) { r.predictions.push_back(p); };
  lo.external_ticks = o.speed <= 0;
  LivePipeline live(config, std::move(decoder), std::move(lo));
  live.start();

  const auto t0 = std::chrono::steady_clock::now();
  const int64_t step = packet_step_ns(o, width);
  const uint64_t in_flight = in_flight_bound(step, width, config.decoder.max_batch);
  Pacer pacer(events, {o.from_ns, o.to_ns, step, o.speed, /*clamp_to_end=*/true});
  while (const auto packet = pacer.next()) {
    core::EventBatch b;
    b.device_time_ns = packet->device_time_ns;
    b.arrival_host_ns = packet->release_host_ns;  // unpaced: the session's clock as host time
    b.events.assign(packet->events.begin(), packet->events.end());
    if (o.speed <= 0) live.wait_in_flight_below(in_flight);
    live.push(std::move(b));
  }
  live.stop();
  r.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.session_s = static_cast<double>(o.to_ns - o.from_ns) * 1e-9;
  r.stats = live.stats();
  r.eval = replay::evaluate(session, r.predictions, o.from_ns, o.to_ns, width);
  return r;
}

}  // namespace spikeflow::pipeline
