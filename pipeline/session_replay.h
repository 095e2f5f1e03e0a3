// Session replay: plays a recorded or synthetic session (replay/session.h) through the live
// graph in process (no sockets on the input side), then scores the predictions against the
// session's behaviour with the evaluator every command shares (replay/eval_report.h).
// Paced at speed x real time (pipeline/pacer.h, the rule the UDP sender shares; chunk deadlines
// run on the ticker as live), or as fast as possible on the session's own clock: chunks then close
// by watermark only and pushes wait for in-flight chunks, so nothing is shed at the decoder's
// bound. Not to be confused with pipeline/recording_replay.h (exact replay of a recorded live run)
// or replay/ (session model and file formats); replay/README.md tells the three apart. Used by
// `spikeflow replay --session`. Blocking; runs on the caller's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/prediction.h"
#include "models/streaming_decoder.h"
#include "pipeline/live_pipeline.h"
#include "pipeline/pipeline_config.h"
#include "replay/eval_report.h"
#include "replay/session.h"

namespace spikeflow::pipeline {

struct SessionReplayOptions {
  int64_t from_ns = 0;  ///< device range played and scored: [from_ns, to_ns]
  int64_t to_ns = 0;
  double speed = 0.0;  ///< x real time; <= 0: as fast as possible
  double batch_ms =
      0.0;  ///< session time per pushed packet; <= 0: 5 ms paced, one chunk width unpaced
};

struct SessionReplayResult {
  size_t events = 0;                          ///< spikes played
  double session_s = 0.0;                     ///< session time played
  double wall_s = 0.0;                        ///< host time from the first push to the drained stop
  std::vector<core::Prediction> predictions;  ///< in publish order
  PipelineStats stats;                        ///< after stop()
  replay::EvalResult eval;                    ///< predictions scored over [from_ns, to_ns)
};

/// config: chunking, decoder and publish as wanted; ingest is replaced by in-process input and the
/// ticker runs only when paced. Throws what LivePipeline's constructor and evaluate() throw.
SessionReplayResult replay_session(const replay::Session& session, PipelineConfig config,
                                   std::unique_ptr<models::StreamingDecoder> decoder,
                                   const SessionReplayOptions& options);

}  // namespace spikeflow::pipeline
