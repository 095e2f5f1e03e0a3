// Exact replay of a recording (pipeline/recorder.h) through the live graph, on the recording's
// own clock: every packet and every deadline tick that closed chunks is fed in the order the
// live binner processed them (the recording keeps that order), and the decoder batches exactly
// the chunks it batched live. With the same model the predictions are bit-identical to the recorded ones.
// Not to be confused with pipeline/session_replay.h (a session, not a recording, through the graph)
// or replay/ (file formats, recording included); replay/README.md tells the three apart.
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
void check_recording_has(const replay::Recording& recording, const std::string& path, RecordingNeed need);

/// config: the recorded run's config (ingest is replaced by in-process input, recording and the
/// ticker are turned off here). Returns the predictions in publish order.
std::vector<core::Prediction> replay_recording(const replay::Recording& recording, PipelineConfig config,
                                               std::unique_ptr<models::StreamingDecoder> decoder);

/// How replayed predictions compare with the recorded ones, index by index: equal seq, flags, token
/// count, output size and bit-identical values.
struct RecordingComparison {
  size_t identical = 0;
  size_t first_difference = SIZE_MAX;  ///< index of the first differing prediction; SIZE_MAX: none
  bool all_identical = false;          ///< every recorded prediction, and no more, came back identical
};
RecordingComparison compare_predictions(const std::vector<core::Prediction>& replayed,
                                        const std::vector<core::Prediction>& recorded);

}  // namespace spikeflow::pipeline
