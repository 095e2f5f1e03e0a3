#include "pipeline/decoder_inbox.h"

#include <algorithm>
#include <stdexcept>

#include "core/chunk_flags.h"

namespace spikeflow::pipeline {

DecoderInbox::DecoderInbox(uint64_t capacity, size_t max_batch, GroupSize group_size)
    : capacity_(capacity), max_batch_(max_batch), group_size_(std::move(group_size)) {
  if (max_batch_ == 0) throw std::invalid_argument("decoder inbox: max_batch must be at least 1");
}

bool DecoderInbox::admit(core::TokenChunk& chunk) {
  // Chunks before this one that the decoder has not finished.
  const uint64_t admission = admitted_.fetch_add(1);
  chunk.admission = admission;
  const uint64_t waiting = admission - decoded_.load();
  if (waiting + 1 > max_waiting_.load(std::memory_order_relaxed)) {
    max_waiting_.store(waiting + 1, std::memory_order_relaxed);
  }
  if (waiting < capacity_) return false;
  chunk.clear_tokens();
  core::set_flag(chunk.flags, core::ChunkFlag::kBacklogShed);
  core::set_flag(chunk.flags, core::ChunkFlag::kEmpty);
  shed_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

std::span<const core::TokenChunk> DecoderInbox::arrive(const core::TokenChunk& chunk) {
  if (batch_size_ != 0)
    throw std::logic_error("decoder inbox: arrive() before finish() of the last batch");
  received_.store(received_.load(std::memory_order_relaxed) + 1);
  // The usual case, nothing pending: the chunk alone is the batch, decoded where it lies.
  const bool alone = staged_.empty() && chunk.admission == next_admission_ &&
                     (group_size_ ? group_size_(chunk) <= 1 : received_.load() >= admitted_.load());
  if (alone) {
    batch_size_ = 1;
    batch_is_staged_ = false;
    return {&chunk, 1};
  }
  // In admission order: oneTBB can hand a serial node two queued messages in either order (a
  // message put while the node finishes its last body may overtake the one it had queued).
  const auto at = std::upper_bound(staged_.begin(), staged_.end(), chunk.admission,
                                   [](uint64_t a, const core::TokenChunk& c) { return a < c.admission; });
  staged_.insert(at, chunk);
  batch_size_ = ready();
  batch_is_staged_ = true;
  return {staged_.data(), batch_size_};
}

std::span<const core::TokenChunk> DecoderInbox::finish() {
  decoded_.fetch_add(batch_size_);
  next_admission_ += batch_size_;
  if (batch_is_staged_)
    staged_.erase(staged_.begin(), staged_.begin() + static_cast<std::ptrdiff_t>(batch_size_));
  batch_size_ = ready();
  batch_is_staged_ = true;
  return {staged_.data(), batch_size_};
}

size_t DecoderInbox::ready() const {
  // Only the run of consecutive admissions starting at the next one due can be decoded.
  size_t run = 0;
  while (run < staged_.size() && staged_[run].admission == next_admission_ + run) ++run;
  if (run == 0) return 0;
  if (group_size_) {
    const size_t n = std::max<size_t>(1, group_size_(staged_.front()));
    return run >= n ? n : 0;  // the rest of the recorded group is still on its way
  }
  if (run >= max_batch_) return max_batch_;
  // Catch-up: wait until every admitted chunk has arrived, then decode them all at once.
  return received_.load() >= admitted_.load() && run == staged_.size() ? run : 0;
}

DecoderInboxStats DecoderInbox::stats() const {
  DecoderInboxStats s;
  // decoded before admitted, so that a snapshot never shows more decoded than admitted.
  s.decoded = decoded_.load();
  s.received = received_.load();
  s.admitted = admitted_.load();
  s.shed = shed_.load();
  s.max_waiting = max_waiting_.load();
  return s;
}

}  // namespace spikeflow::pipeline
