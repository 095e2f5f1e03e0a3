#include "stages/decode_stage.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "core/chunk_flags.h"
#include "core/time.h"

namespace spikeflow::stages {

DecodeStage::DecodeStage(std::unique_ptr<models::StreamingDecoder> decoder, Clock clock)
    : decoder_(std::move(decoder)), clock_(clock ? clock : &core::host_now_ns) {
  if (!decoder_) throw std::invalid_argument("decode stage: no decoder");
  dim_ = decoder_->output_dim();
  if (dim_ <= 0 || dim_ > core::kMaxOutputDim) {
    throw std::invalid_argument("decode stage: decoder output_dim " + std::to_string(dim_) +
                                " outside [1, " + std::to_string(core::kMaxOutputDim) + "]");
  }
}

void DecodeStage::decode(std::span<const core::TokenChunk> chunks,
                         std::vector<core::Prediction>& out) {
  // A new device-clock epoch starts from a fresh recurrent state: split the batch there.
  const bool catch_up = chunks.size() > 1;
  size_t i = 0;
  while (i < chunks.size()) {
    size_t j = i + 1;
    while (j < chunks.size() && !core::has_flag(chunks[j].flags, core::ChunkFlag::kNewEpoch)) ++j;
    if (core::has_flag(chunks[i].flags, core::ChunkFlag::kNewEpoch)) {
      decoder_->reset();
      ++stats_.epoch_resets;
    }
    decode_run(chunks.subspan(i, j - i), catch_up, out);
    i = j;
  }
}

void DecodeStage::decode_run(std::span<const core::TokenChunk> chunks, bool catch_up,
                             std::vector<core::Prediction>& out) {
  const size_t n = chunks.size();
  values_.resize(n * static_cast<size_t>(dim_));
  const int64_t start = clock_();
  try {
    if (n == 1) {
      decoder_->step(chunks[0], std::span<float>(values_.data(), static_cast<size_t>(dim_)));
    } else {
      ptrs_.clear();
      for (const auto& c : chunks) ptrs_.push_back(&c);
      decoder_->step_many(ptrs_, values_);
    }
  } catch (const std::exception& e) {
    // A model failure must not cost a chunk its prediction: treat as non-finite output
    // (repaired below from the last good value, counted, state reset).
    count_error(e.what());
    std::fill(values_.begin(), values_.end(), std::numeric_limits<float>::quiet_NaN());
  }
  if (n > 1) ++stats_.batched_calls;
  const int64_t end = clock_();
  stats_.chunks += n;
  stats_.max_batch = std::max<uint64_t>(stats_.max_batch, n);

  bool reset_needed = false;
  for (size_t i = 0; i < n; ++i) {
    const auto& c = chunks[i];
    core::Prediction p;
    p.seq = c.seq;
    p.chunk_index = c.seq;
    p.epoch = c.epoch;
    p.start_ns = c.start_ns;
    p.end_ns = c.end_ns;
    p.flags = c.flags;
    if (catch_up) core::set_flag(p.flags, core::ChunkFlag::kCatchUp);
    p.n_tokens = static_cast<uint32_t>(c.size());
    p.output_dim = dim_;
    p.timing = c.timing;
    p.timing.decode_start_ns = start;
    p.timing.decode_end_ns = end;
    const float* v = values_.data() + i * static_cast<size_t>(dim_);
    bool finite = true;
    for (int d = 0; d < dim_; ++d) finite = finite && std::isfinite(v[d]);
    if (finite) {
      for (int d = 0; d < dim_; ++d) last_good_[static_cast<size_t>(d)] = v[d];
    } else {
      core::set_flag(p.flags, core::ChunkFlag::kOutputRepaired);
      ++stats_.repaired_outputs;
      reset_needed = true;
    }
    for (int d = 0; d < dim_; ++d)
      p.values[static_cast<size_t>(d)] = last_good_[static_cast<size_t>(d)];
    out.push_back(p);
  }
  if (reset_needed) decoder_->reset();
}

void DecodeStage::prepare_next() {
  try {
    decoder_->prepare_next();
  } catch (const std::exception& e) {
    count_error(e.what());
    decoder_->reset();
  }
}

void DecodeStage::warm(bool chunk_pending) {
  if (chunk_pending) {
    ++stats_.warmups_skipped;
    return;
  }
  ++stats_.warmups;
  try {
    decoder_->warm();
  } catch (const std::exception& e) {
    count_error(e.what());
  }
}

void DecodeStage::count_error(const char* what) {
  ++stats_.decoder_errors;
  last_error_ = what;  // an allocation, on the failure path only
}

}  // namespace spikeflow::stages
