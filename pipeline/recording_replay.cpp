#include "pipeline/recording_replay.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <unordered_map>

#include "core/chunk_flags.h"
#include "pipeline/live_pipeline.h"
#include "pipeline/recorder.h"

namespace spikeflow::pipeline {

std::vector<core::Prediction> replay_recording(const replay::Recording& rec, PipelineConfig cfg,
                                               std::unique_ptr<models::StreamingDecoder> decoder) {
  cfg.ingest.transport = Transport::kNone;
  cfg.record.path.clear();
  if (cfg.publish.endpoint.rfind("tcp://", 0) == 0) cfg.publish.endpoint = "inproc://spikeflow-replay";
  // Decoder calls as they happened live: consecutive predictions sharing a decode start time.
  std::unordered_map<int64_t, size_t> groups;
  for (size_t i = 0; i < rec.predictions.size();) {
    size_t j = i + 1;
    while (j < rec.predictions.size() &&
           rec.predictions[j].timing.decode_start_ns == rec.predictions[i].timing.decode_start_ns) {
      ++j;
    }
    groups[rec.predictions[i].seq] = j - i;
    i = j;
  }
  // Recordings made before tick markers existed: ticks from the deadline-closed predictions,
  // merged with the packets by host time.
  bool has_markers = false;
  for (const auto& b : rec.batches) has_markers = has_markers || b.device_time_ns == kTickMarkerDeviceTime;
  std::vector<int64_t> ticks;
  if (!has_markers) {
    for (const auto& p : rec.predictions) {
      if (core::has_flag(p.flags, core::ChunkFlag::kClosedByDeadline)) ticks.push_back(p.timing.trigger_arrival_ns);
    }
  }
  std::vector<core::Prediction> out;
  out.reserve(rec.predictions.size());
  LiveOptions lo;
  lo.on_prediction = [&out](const core::Prediction& p) { out.push_back(p); };
  lo.external_ticks = true;
  lo.decode_group_size = [&groups](int64_t seq) {
    auto it = groups.find(seq);
    return it == groups.end() ? size_t{1} : it->second;
  };
  LivePipeline live(cfg, std::move(decoder), std::move(lo));
  live.start();
  size_t ti = 0;
  for (const auto& b : rec.batches) {
    if (b.device_time_ns == kTickMarkerDeviceTime) {
      live.tick(b.arrival_host_ns);  // in the binner's own order, as recorded
      continue;
    }
    while (ti < ticks.size() && ticks[ti] <= b.arrival_host_ns) live.tick(ticks[ti++]);
    live.push(b);
  }
  while (ti < ticks.size()) live.tick(ticks[ti++]);
  live.stop();
  return out;
}

RecordingComparison compare_predictions(const std::vector<core::Prediction>& replayed,
                                        const std::vector<core::Prediction>& recorded) {
  RecordingComparison c;
  const size_t n = std::min(replayed.size(), recorded.size());
  for (size_t i = 0; i < n; ++i) {
    const auto& x = replayed[i];
    const auto& y = recorded[i];
    const bool same = x.seq == y.seq && x.flags == y.flags && x.n_tokens == y.n_tokens &&
                      x.output_dim == y.output_dim &&
                      std::memcmp(x.values.data(), y.values.data(), sizeof(float) * x.output_dim) == 0;
    if (same) {
      ++c.identical;
    } else if (c.first_difference == SIZE_MAX) {
      c.first_difference = i;
    }
  }
  c.all_identical = c.identical == recorded.size() && replayed.size() == recorded.size();
  return c;
}

RecordingCheck check_replay(const std::vector<core::Prediction>& replayed, const replay::Recording& rec) {
  RecordingCheck c;
  const auto& recorded = rec.predictions;
  if (rec.clean_end) {
    c.compared = recorded.size();
    c.comparison = compare_predictions(replayed, recorded);
    return c;
  }
  size_t n = recorded.size();
  while (n > 0 && recorded[n - 1].timing.decode_start_ns == recorded.back().timing.decode_start_ns) --n;
  c.compared = n;
  c.incomplete_tail = recorded.size() - n;
  c.extra_replayed = replayed.size() > recorded.size() ? replayed.size() - recorded.size() : 0;
  const std::vector<core::Prediction> head(recorded.begin(), recorded.begin() + static_cast<std::ptrdiff_t>(n));
  const std::vector<core::Prediction> replayed_head(
      replayed.begin(), replayed.begin() + static_cast<std::ptrdiff_t>(std::min(n, replayed.size())));
  c.comparison = compare_predictions(replayed_head, head);
  return c;
}

}  // namespace spikeflow::pipeline
