// ChunkTiming: host timestamps a chunk collects as it moves through the pipeline.
// Written by the pipeline stages in order (binner, tokenizer, decoder, publisher); read by the
// publisher (sent on the wire) and by metrics. All values are host_now_ns(); 0 = not reached.
#pragma once

#include <cstdint>

namespace spikeflow::core {

struct ChunkTiming {
  int64_t trigger_arrival_ns = 0;  ///< arrival of the packet (or tick) that made the chunk close
  int64_t close_ns = 0;            ///< binner emitted the chunk
  int64_t tokenize_ns = 0;         ///< tokenizer finished
  int64_t decode_start_ns = 0;     ///< decoder started on it
  int64_t decode_end_ns = 0;       ///< decoder produced the prediction
  int64_t publish_ns = 0;          ///< publisher handed the message to ZeroMQ
};

}  // namespace spikeflow::core
