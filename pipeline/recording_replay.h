// Exact replay of a recording (pipeline/recorder.h) through the live graph, on the recording's
// own clock: every packet and every deadline tick that closed chunks is fed in the order the
// live binner processed them (the recording keeps that order), and the decoder batches exactly
// the chunks it batched live. With the same model the predictions are bit-identical to the recorded
// ones. Not to be confused with pipeline/session_replay.h (a session, not a recording, through the
// graph) or replay/ (file formats, recording included); replay/README.md tells the three apart.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "core/prediction.h"
#include "models/streaming_decoder.h"
#include "pipeline/pipeline_config.h"
#include "replay/recording_file.h"

namespace spikeflow::pipeline {

/// What a command needs from a recording: replay needs the run's config, model and unit map
/// (written when the run starts); eval needs its predictions.
enum class RecordingNeed { kReplay, kPredictions };

/// Throws core::InputFileError naming the file, its size and what is missing when a recording
/// (read by replay::read_recording, which accepts any clean header) lacks what `need` asks for,
/// e.g. "r.sfrec: recording ends after 40 bytes: no config, model or unit-map record (nothing to
/// replay)". A file cut short also says so.
void check_recording_has(const replay::Recording& recording, const std::string& path,
                         RecordingNeed need);

/// config: the recorded run's config (ingest is replaced by in-process input, recording and the
/// ticker are turned off here). Returns the predictions in publish order.
std::vector<core::Prediction> replay_recording(const replay::Recording& recording,
                                               PipelineConfig config,
                                               std::unique_ptr<models::StreamingDecoder> decoder);

/// How replayed predictions compare with the recorded ones, index by index: equal seq, flags, token
/// count, output size and bit-identical values.
struct RecordingComparison {
  size_t identical = 0;
  size_t first_difference = SIZE_MAX;  ///< index of the first differing prediction; SIZE_MAX: none
  bool all_identical = false;  ///< every recorded prediction, and no more, came back identical
};
RecordingComparison compare_predictions(const std::vector<core::Prediction>& replayed,
                                        const std::vector<core::Prediction>& recorded);

/// What of a recording an exact replay can be held to. A clean recording: every prediction. One
/// that was not closed cleanly (the run was killed) ends at an arbitrary record: its last decoder
/// call may have been recorded only in part (so it replays as a smaller batch), and the replay
/// also produces predictions for chunks whose inputs were recorded but whose predictions were
/// not. Such a recording is held to its predictions before the last recorded decoder call (every
/// input of those precedes them in the file, the recorder writing in arrival order), and the
/// replay may produce more.
struct RecordingCheck {
  size_t compared = 0;  ///< recorded predictions the replay must reproduce, from the first
  size_t incomplete_tail =
      0;  ///< recorded predictions left out: the last, maybe partial, decoder call
  size_t extra_replayed = 0;  ///< replayed predictions past the recorded ones (torn recording only)
  RecordingComparison comparison;  ///< over the first `compared`; all_identical: all of them match
};
RecordingCheck check_replay(const std::vector<core::Prediction>& replayed,
                            const replay::Recording& recording);

}  // namespace spikeflow::pipeline
