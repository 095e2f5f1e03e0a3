// ContractChecker: checks one subscriber's stream of predictions against the live contract
// (README "The live contract"), as the subscriber sees it. Fed by `spikeflow listen --check`,
// `spikeflow soak` and the real-process fault tests (tests/cli/live_faults_test.cpp).
//
//   - seq is +1 per message: a jump ahead is messages lost on the way (counted as lost, not a
//     violation: ZeroMQ drops at its high-water mark); seq equal or back is a violation.
//   - (epoch, chunk_index) strictly increases; within an epoch, chunk_index is +1 when nothing
//     was lost in between (a repeat is counted as a duplicate).
//   - new_epoch exactly on the first chunk of each epoch after the first one seen.
//   - every value finite.
// The first message sets the baseline (a subscriber may join mid-run). A plain class: one
// caller thread, no I/O.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "core/prediction.h"

namespace spikeflow::pipeline {

enum class ContractViolation : int {
  kSeqNotIncreasing = 0,  ///< seq equal to or below the previous one
  kChunkOrder,            ///< (epoch, chunk_index) not above the previous one
  kDuplicateChunk,        ///< the previous (epoch, chunk_index) again (also counted in kChunkOrder)
  kChunkSkipped,          ///< within an epoch, chunk_index jumped with no message lost
  kNewEpochMissing,       ///< first chunk of a new epoch without the new_epoch flag
  kNewEpochSpurious,      ///< new_epoch on a chunk that does not start an epoch
  kNonFinite,             ///< a NaN or inf value
  kCount
};

const char* to_string(ContractViolation v);

class ContractChecker {
 public:
  /// One received prediction; receive_ns (the subscriber's CLOCK_MONOTONIC, 0 = unknown) feeds
  /// the longest silence between consecutive messages.
  void feed(const core::Prediction& p, int64_t receive_ns = 0);

  uint64_t received() const { return received_; }
  uint64_t lost() const { return lost_; }  ///< messages missing by seq (subscriber side)
  uint64_t violations() const;
  uint64_t violations(ContractViolation v) const { return counts_[static_cast<size_t>(v)]; }
  uint64_t epochs_seen() const { return epochs_; }  ///< distinct epochs, the first one included
  /// Flag counts: late chunks are closed_by_deadline, catch_up or had_late_events.
  uint64_t closed_by_deadline() const { return by_deadline_; }
  uint64_t catch_up() const { return catch_up_; }
  uint64_t had_late_events() const { return late_; }
  uint64_t late_flagged() const { return late_flagged_; }  ///< chunks with any of the three
  uint64_t new_epoch_flags() const { return new_epoch_; }
  uint64_t no_source() const { return no_source_; }
  int64_t max_silence_ns() const { return max_silence_ns_; }
  int64_t last_seq() const { return last_seq_; }

  /// Two lines: received, lost, flags; violations by kind.
  std::string summary() const;

 private:
  void violate(ContractViolation v) { ++counts_[static_cast<size_t>(v)]; }

  std::array<uint64_t, static_cast<size_t>(ContractViolation::kCount)> counts_{};
  uint64_t received_ = 0, lost_ = 0, epochs_ = 0;
  uint64_t by_deadline_ = 0, catch_up_ = 0, late_ = 0, late_flagged_ = 0, new_epoch_ = 0,
           no_source_ = 0;
  int64_t last_seq_ = -1, last_chunk_ = 0, last_receive_ns_ = 0, max_silence_ns_ = 0;
  uint32_t last_epoch_ = 0;
};

}  // namespace spikeflow::pipeline
