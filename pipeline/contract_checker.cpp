#include "pipeline/contract_checker.h"

#include <fmt/format.h>

#include <cmath>

#include "core/chunk_flags.h"

namespace spikeflow::pipeline {

const char* to_string(ContractViolation v) {
  switch (v) {
    case ContractViolation::kSeqNotIncreasing:
      return "seq_not_increasing";
    case ContractViolation::kChunkOrder:
      return "chunk_order";
    case ContractViolation::kDuplicateChunk:
      return "duplicate_chunk";
    case ContractViolation::kChunkSkipped:
      return "chunk_skipped";
    case ContractViolation::kNewEpochMissing:
      return "new_epoch_missing";
    case ContractViolation::kNewEpochSpurious:
      return "new_epoch_spurious";
    case ContractViolation::kNonFinite:
      return "non_finite";
    case ContractViolation::kCount:
      break;
  }
  return "?";
}

void ContractChecker::feed(const core::Prediction& p, int64_t receive_ns) {
  using core::ChunkFlag;
  using core::has_flag;
  ++received_;
  if (receive_ns > 0 && last_receive_ns_ > 0)
    max_silence_ns_ = std::max(max_silence_ns_, receive_ns - last_receive_ns_);
  if (receive_ns > 0) last_receive_ns_ = receive_ns;
  for (int d = 0; d < p.output_dim; ++d) {
    if (!std::isfinite(p.values[static_cast<size_t>(d)])) {
      violate(ContractViolation::kNonFinite);
      break;
    }
  }
  const bool deadline = has_flag(p.flags, ChunkFlag::kClosedByDeadline);
  const bool catch_up = has_flag(p.flags, ChunkFlag::kCatchUp);
  const bool late = has_flag(p.flags, ChunkFlag::kHadLateEvents);
  const bool new_epoch = has_flag(p.flags, ChunkFlag::kNewEpoch);
  by_deadline_ += deadline;
  catch_up_ += catch_up;
  late_ += late;
  late_flagged_ += deadline || catch_up || late;
  new_epoch_ += new_epoch;
  no_source_ += has_flag(p.flags, ChunkFlag::kNoSource);

  if (last_seq_ < 0) {  // the baseline: a subscriber may join anywhere
    last_seq_ = p.seq;
    last_epoch_ = p.epoch;
    last_chunk_ = p.chunk_index;
    epochs_ = 1;
    return;
  }
  const bool contiguous = p.seq == last_seq_ + 1;  // nothing lost in between
  if (p.seq <= last_seq_) {
    violate(ContractViolation::kSeqNotIncreasing);
  } else {
    lost_ += static_cast<uint64_t>(p.seq - last_seq_ - 1);
  }
  if (p.epoch < last_epoch_ || (p.epoch == last_epoch_ && p.chunk_index <= last_chunk_)) {
    violate(ContractViolation::kChunkOrder);
    if (p.epoch == last_epoch_ && p.chunk_index == last_chunk_)
      violate(ContractViolation::kDuplicateChunk);
  } else if (p.epoch == last_epoch_) {
    if (contiguous && p.chunk_index != last_chunk_ + 1) violate(ContractViolation::kChunkSkipped);
    if (new_epoch) violate(ContractViolation::kNewEpochSpurious);
  } else {  // a later epoch
    ++epochs_;
    if (contiguous && !new_epoch) violate(ContractViolation::kNewEpochMissing);
  }
  if (p.seq > last_seq_) last_seq_ = p.seq;
  if (p.epoch > last_epoch_ || (p.epoch == last_epoch_ && p.chunk_index > last_chunk_)) {
    last_epoch_ = p.epoch;
    last_chunk_ = p.chunk_index;
  }
}

uint64_t ContractChecker::violations() const {
  uint64_t n = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    if (i != static_cast<size_t>(ContractViolation::kDuplicateChunk))
      n += counts_[i];  // within chunk_order
  }
  return n;
}

std::string ContractChecker::summary() const {
  std::string s = fmt::format(
      "contract: received {}, lost {} (seq gaps), epochs {}, new_epoch {}, late-flagged {} (closed "
      "by deadline {}, "
      "catch-up {}, had late events {}), no_source {}, longest silence {:.0f} ms\n",
      received_, lost_, epochs_, new_epoch_, late_flagged_, by_deadline_, catch_up_, late_,
      no_source_, static_cast<double>(max_silence_ns_) / 1e6);
  s += fmt::format("contract: violations {}", violations());
  for (size_t i = 0; i < counts_.size(); ++i) {
    s += fmt::format(", {} {}", to_string(static_cast<ContractViolation>(i)), counts_[i]);
  }
  return s + "\n";
}

}  // namespace spikeflow::pipeline
