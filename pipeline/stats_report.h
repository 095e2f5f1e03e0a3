// PipelineStats: one snapshot of every counter of every stage of the live pipeline and its
// latency histograms (LivePipeline::stats()), and its two formats: the JSON object published on
// the stats topic, and the human-readable report printed by `spikeflow run`.
// Plain data and pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>

#include "core/latency_histogram.h"
#include "pipeline/decoder_inbox.h"
#include "pipeline/recorder.h"
#include "pipeline/zmq_publisher.h"
#include "stages/binner.h"
#include "stages/publish_guard.h"
#include "stages/decode_stage.h"
#include "stages/native_packet_decoder.h"
#include "stages/tokenizer.h"

namespace spikeflow::pipeline {

/// Snapshot of every counter and latency histogram, for reports and tests.
struct PipelineStats {
  stages::IngestStats ingest;
  stages::BinnerStats binner;
  stages::TokenizerStats tokenizer;
  DecoderInboxStats inbox;
  stages::DecodeStats decode;
  PublishStats publish;
  RecorderStats recorder;
  uint64_t predictions = 0;
  uint64_t backlog_shed = 0;        ///< = inbox.shed: chunks whose tokens were shed at the bound
  stages::PublishGuardStats guard;  ///< wire seq; refused (must stay 0) and chunk gaps
  uint64_t out_of_order = 0;        ///< must stay 0: a publish seq that did not follow the last
  int64_t last_seq = -1;
  uint64_t tap_errors = 0;  ///< taps (recorder, LiveOptions callbacks) that threw: caught, logged
  uint64_t stage_errors = 0;         ///< stage bodies that threw (a bug): the item dropped, logged
  uint64_t decoder_spins = 0;        ///< decoder thread polled for a chunk (decoder.spin_us)
  uint64_t decoder_spin_caught = 0;  ///< ... and the chunk came while it polled
  core::LatencyHistogram close_latency;    ///< trigger arrival -> chunk closed
  core::LatencyHistogram queue_latency;    ///< closed -> decode start
  core::LatencyHistogram decode_latency;   ///< decode start -> end
  core::LatencyHistogram publish_latency;  ///< decode end -> published
  core::LatencyHistogram total_latency;    ///< trigger arrival -> published
};

/// One JSON object (no newline) with one member per stage holding all its counters (drop
/// counters by reason), and each span's latency percentiles in ns: the stats topic's payload.
std::string stats_json(const PipelineStats& s);

/// Multi-line human-readable report of the same: counters by stage and reason, latency table
/// in µs.
std::string format_report(const PipelineStats& s);

}  // namespace spikeflow::pipeline
