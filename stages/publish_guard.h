// PublishGuard: the last line of the live contract before a prediction leaves the process.
//
// Every prediction passes admit() just before it is published. It stamps the wire sequence
// number (Prediction::seq: +1 per published prediction for the whole run) and checks the
// contract on the chunk's own place in time: within an epoch chunk_index goes up by exactly one;
// a new epoch has a larger epoch number. A prediction that would repeat a chunk or go back is
// refused (counted; the caller does not publish it) — a subscriber can never see a chunk twice.
// A forward gap inside an epoch is admitted but counted (it should never happen: the binner
// emits every chunk).
// Plain class, one caller at a time (the pipeline's publisher node, or the simulator).
#pragma once

#include <cstdint>

#include "core/prediction.h"

namespace spikeflow::stages {

struct PublishGuardStats {
  uint64_t admitted = 0;
  uint64_t refused = 0;     ///< would have repeated a chunk or gone back: not published
  uint64_t chunk_gaps = 0;  ///< chunk_index skipped inside an epoch (chunks missing)
  uint64_t epochs = 0;      ///< epoch changes seen
};

class PublishGuard {
 public:
  /// Stamps p.seq and returns true when p may be published; false (counted) when it would
  /// repeat or go back.
  bool admit(core::Prediction& p) {
    if (started_) {
      const bool same_epoch = p.epoch == last_epoch_;
      if (p.epoch < last_epoch_ || (same_epoch && p.chunk_index <= last_chunk_)) {
        ++stats_.refused;
        return false;
      }
      if (same_epoch && p.chunk_index != last_chunk_ + 1) ++stats_.chunk_gaps;
      if (!same_epoch) ++stats_.epochs;
    }
    started_ = true;
    last_epoch_ = p.epoch;
    last_chunk_ = p.chunk_index;
    p.seq = next_seq_++;
    ++stats_.admitted;
    return true;
  }

  /// The wire seq the next admitted prediction gets.
  int64_t next_seq() const { return next_seq_; }
  const PublishGuardStats& stats() const { return stats_; }

 private:
  bool started_ = false;
  uint32_t last_epoch_ = 0;
  int64_t last_chunk_ = 0;
  int64_t next_seq_ = 0;
  PublishGuardStats stats_;
};

}  // namespace spikeflow::stages
