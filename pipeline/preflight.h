// Preflight: checks a pipeline config and the decoder checkpoint it names *together*, before any
// socket is bound or thread started (BCI2000's Preflight: const, finds every problem at once).
// A config file can be valid on its own and still be unusable with a given checkpoint (a chunk
// width the model was not trained on, a unit map the ingest format can never produce) or on a
// given machine (cuda without a CUDA LibTorch, a realtime.* knob this process may not use).
// `spikeflow run` calls load_checked_decoder() before it constructs the LivePipeline;
// LivePipeline keeps its own width check (and realtime check) as a last guard.
//
// Errors vs warnings: an error is a run that cannot do its job (the model could never decode
// anything useful); a warning is a run that works but degrades. Unit map vs ingest format:
//   native     channel: any u32                      -> never a problem
//   blackrock  chid 1..ingest.blackrock.fe_channels  (0 is not a spike channel)
//   intan      port A..H x 128 -> channel 0..1023
// Some of the model's units outside the format's range: warning (those units stay silent).
// Every unit outside: error. With ingest.transport none (replay) the format is not used.
// Setup only; thread-safe (no shared state).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/streaming_decoder.h"
#include "pipeline/pipeline_config.h"

namespace spikeflow::pipeline {

struct PreflightReport {
  std::vector<std::string> errors;  ///< each names the key (and the checkpoint) concerned
  std::vector<std::string> warnings;
};

/// Every problem of config alone (decoder may be null) or with the loaded decoder.
/// cuda_available: whether this build can run decoder.device cuda (models::cuda_available()).
PreflightReport preflight(const PipelineConfig& config, const models::StreamingDecoder* decoder,
                          bool cuda_available);

/// Loads config.decoder.checkpoint and preflights the pair. Throws ConfigError(source, every
/// error) when there is any: a checkpoint that will not load is one of them, and a device that
/// is not available does not hide the checkpoint's own problems (the checkpoint is then loaded
/// on the CPU only to check it). Logs warnings. source names the config in the message.
std::unique_ptr<models::StreamingDecoder> load_checked_decoder(const PipelineConfig& config,
                                                               const std::string& source);

}  // namespace spikeflow::pipeline
