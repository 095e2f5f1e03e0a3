// Recorder: a tap that writes every accepted packet and every published prediction to a
// recording file (replay/recording_file.h) without putting file I/O on the graph's threads.
// The graph's taps call record() (non-blocking: a bounded queue; when it is full the item is
// dropped and counted, never waited for); a thread of its own ("sf-recorder") polls the queue
// every 5 ms (so record() never wakes it up in the middle of a chunk close), writes, flushes
// every 100 ms (a crash loses at most that much), logs drops (at most one line a second, from
// its own thread) and closes the file with an END record on stop().
// Thread contract: record() from any one thread per item kind; stop() from the owner.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/event_batch.h"
#include "core/prediction.h"
#include "core/unit_map.h"

namespace spikeflow::pipeline {

struct RecorderStats {
  uint64_t batches = 0;      ///< packets written
  uint64_t predictions = 0;  ///< predictions written
  uint64_t dropped = 0;      ///< queue full: not recorded (counted; logged, rate-limited)
  uint64_t io_errors = 0;
  uint64_t bytes = 0;
};

class Recorder {
 public:
  /// Creates the file and writes its header, the config text, the model identity and the unit
  /// map. Throws std::runtime_error naming the file when it cannot be created.
  Recorder(const std::string& path, const std::string& config_text,
           const std::string& model_description, const std::string& model_identity,
           const std::vector<core::UnitKey>& units, size_t queue_capacity = 65536);
  ~Recorder();

  /// Queues a copy for the writer thread; never blocks. Queue full: dropped and counted.
  void record(const core::EventBatch& batch);
  void record(const core::Prediction& prediction);

  /// Writes what is queued, the END record, and closes. Idempotent.
  void stop();
  RecorderStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// An EVENTS record with no events and this device_time_ns marks a deadline tick that closed
/// chunks, at its place in the binner's processing order (arrival_host_ns = the tick's host
/// time). Exact replay follows the file's order, so ticks and packets that raced into the
/// binner live are replayed in the order the binner actually saw them.
constexpr int64_t kTickMarkerDeviceTime = -2;

/// A short identity of a checkpoint file for recordings: "<size bytes>:<core::fnv1a64 hex>".
std::string file_identity(const std::string& path);

}  // namespace spikeflow::pipeline
