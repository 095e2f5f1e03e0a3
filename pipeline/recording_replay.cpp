#include "pipeline/recording_replay.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <utility>

#include "core/chunk_flags.h"
#include "core/file_check.h"
#include "pipeline/live_pipeline.h"
#include "pipeline/recorder.h"

namespace spikeflow::pipeline {

void check_recording_has(const replay::Recording& rec, const std::string& path,
                         RecordingNeed need) {
  std::vector<std::string> missing;
  if (need == RecordingNeed::kReplay) {
    if (rec.config.empty()) missing.push_back("config");
    if (rec.model.empty() && rec.model_identity.empty()) missing.push_back("model");
    if (rec.units.empty()) missing.push_back("unit-map");
  } else if (rec.predictions.empty()) {
    missing.push_back("prediction");
  }
  if (missing.empty()) return;
  std::string list;
  for (size_t i = 0; i < missing.size(); ++i) {
    list += (i == 0 ? "" : i + 1 == missing.size() ? " or " : ", ") + missing[i];
  }
  const uint64_t size = rec.bytes_read + rec.bytes_lost;
  const std::string why =
      need == RecordingNeed::kReplay ? " (nothing to replay)" : " (nothing to score)";
  std::string where;
  if (rec.records == 0 && rec.bytes_lost == 0)
    where = " (its header alone)";
  else if (rec.truncated)
    where = ", cut inside a record";
  else if (rec.corrupt)
    where = ", damaged after " + std::to_string(rec.bytes_read) + " bytes";
  else if (!rec.clean_end)
    where = ", not closed cleanly";
  throw core::InputFileError(path + ": recording ends after " + std::to_string(size) + " bytes" +
                             where + ": no " + list + " record" + why);
}

std::vector<core::Prediction> replay_recording(const replay::Recording& rec, PipelineConfig cfg,
                                               std::unique_ptr<models::StreamingDecoder> decoder) {
  cfg.ingest.transport = Transport::kNone;
  cfg.record.path.clear();
  if (cfg.publish.endpoint.rfind("tcp://", 0) == 0)
    cfg.publish.endpoint = "inproc://spikeflow-replay";
  // Decoder calls as they happened live: consecutive predictions sharing a decode start time.
  // Keyed by (epoch, chunk_index): chunk indices repeat across epochs after a jump back.
  std::map<std::pair<uint32_t, int64_t>, size_t> groups;
  for (size_t i = 0; i < rec.predictions.size();) {
    size_t j = i + 1;
    while (j < rec.predictions.size() &&
           rec.predictions[j].timing.decode_start_ns == rec.predictions[i].timing.decode_start_ns) {
      ++j;
    }
    groups[{rec.predictions[i].epoch, rec.predictions[i].chunk_index}] = j - i;
    i = j;
  }
  // Recordings made before tick markers existed: ticks from the deadline-closed predictions,
  // merged with the packets by host time.
  bool has_markers = false;
  for (const auto& b : rec.batches)
    has_markers = has_markers || b.device_time_ns == kTickMarkerDeviceTime;
  std::vector<int64_t> ticks;
  if (!has_markers) {
    for (const auto& p : rec.predictions) {
      if (core::has_flag(p.flags, core::ChunkFlag::kClosedByDeadline))
        ticks.push_back(p.timing.trigger_arrival_ns);
    }
  }
  std::vector<core::Prediction> out;
  out.reserve(rec.predictions.size());
  LiveOptions lo;
  lo.on_prediction = [&out](const core::Prediction& p) { out.push_back(p); };
  lo.external_ticks = true;
  lo.decode_group_size = [&groups](const core::TokenChunk& first) {
    auto it = groups.find({first.epoch, first.seq});
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
    const bool same =
        x.seq == y.seq && x.chunk_index == y.chunk_index && x.epoch == y.epoch &&
        x.flags == y.flags && x.n_tokens == y.n_tokens && x.output_dim == y.output_dim &&
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

RecordingCheck check_replay(const std::vector<core::Prediction>& replayed,
                            const replay::Recording& rec) {
  RecordingCheck c;
  const auto& recorded = rec.predictions;
  if (rec.clean_end) {
    c.compared = recorded.size();
    c.comparison = compare_predictions(replayed, recorded);
    return c;
  }
  size_t n = recorded.size();
  while (n > 0 && recorded[n - 1].timing.decode_start_ns == recorded.back().timing.decode_start_ns)
    --n;
  c.compared = n;
  c.incomplete_tail = recorded.size() - n;
  c.extra_replayed = replayed.size() > recorded.size() ? replayed.size() - recorded.size() : 0;
  const std::vector<core::Prediction> head(recorded.begin(),
                                           recorded.begin() + static_cast<std::ptrdiff_t>(n));
  const std::vector<core::Prediction> replayed_head(
      replayed.begin(),
      replayed.begin() + static_cast<std::ptrdiff_t>(std::min(n, replayed.size())));
  c.comparison = compare_predictions(replayed_head, head);
  return c;
}

}  // namespace spikeflow::pipeline
