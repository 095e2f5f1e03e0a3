// decode_dataset: offline streaming decode of a whole DecodingDataset with any StreamingDecoder
// (validation in the trainer, the baselines' training R², `spikeflow train`'s test scores,
// benchmarks). Torch-free.
#pragma once

#include <vector>

#include "core/decoding_dataset.h"
#include "models/streaming_decoder.h"

namespace spikeflow::models {

/// Decodes data with dec from reset(), in chunk order, carrying the state across all chunks
/// (equivalent to one step() per chunk). Returns n × output_dim values, row-major.
std::vector<float> decode_dataset(StreamingDecoder& dec, const core::DecodingDataset& data);

}  // namespace spikeflow::models
