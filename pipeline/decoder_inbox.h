// DecoderInbox: the decoder's input queue — its bound, its overflow policy, its counters and the
// catch-up batching rule. The chunks themselves travel on the graph's tokenizer → decoder edge
// (the decoder node's input buffer holds those it has not reached yet); the inbox counts them on
// both ends of that edge:
//   - the sending side (the tokenizer node) calls admit() on each chunk before putting it on the
//     edge: past `capacity` waiting chunks (admitted, not yet decoded) the chunk's tokens are
//     shed — it is still decoded, as empty, so it keeps its prediction and the recurrent state
//     its place in time — flagged kBacklogShed | kEmpty and counted. Memory stays bounded
//     whatever the decoder does.
//   - the decoder node calls arrive() on each chunk it receives. While admitted chunks are still
//     on the edge behind it, it stages the chunk and returns nothing; once the decoder has
//     received every admitted chunk (or max_batch of them), it returns all staged chunks, to be
//     decoded in one batched call (catch-up after a stall: every pending chunk at once, none
//     skipped). With a group-size function (exact replay) the batch is instead exactly the
//     recorded group starting at the first staged chunk, once all of it has arrived.
// Thread contract: admit() from one thread at a time (the serial tokenizer node); arrive() and
// finish() from one thread at a time (the serial decoder node); stats() and waiting() from any.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "core/token_chunk.h"

namespace spikeflow::pipeline {

struct DecoderInboxStats {
  uint64_t admitted = 0;     ///< chunks sent towards the decoder
  uint64_t shed = 0;         ///< ... whose tokens were shed at the bound (flag kBacklogShed)
  uint64_t received = 0;     ///< ... that reached the decoder node
  uint64_t decoded = 0;      ///< ... that the decoder finished
  uint64_t max_waiting = 0;  ///< most chunks waiting (admitted, not decoded) seen by admit()
};

class DecoderInbox {
 public:
  /// Exact replay: how many chunks, starting at this one, must be decoded in one call.
  using GroupSize = std::function<size_t(const core::TokenChunk& first)>;

  /// capacity: waiting chunks past which tokens are shed (decoder.max_backlog, >= 0).
  /// max_batch: most chunks per decode call (decoder.max_batch, >= 1); ignored with group_size.
  DecoderInbox(uint64_t capacity, size_t max_batch, GroupSize group_size = {});

  // ---- Sending side (the tokenizer node) ----

  /// Counts chunk as waiting and applies the overflow policy to it (see the file comment).
  /// Returns true when its tokens were shed.
  bool admit(core::TokenChunk& chunk);

  // ---- Decoder side (the decoder node) ----

  /// chunk arrived over the edge. Returns the chunks to decode now, in order — empty while the
  /// batch is still incomplete. When nothing is staged and chunk alone is the batch, the span
  /// refers to chunk itself (no copy): keep it alive until finish().
  std::span<const core::TokenChunk> arrive(const core::TokenChunk& chunk);

  /// The span arrive() (or the previous finish()) returned has been decoded: counts it and
  /// returns the next batch that is complete, if any (empty otherwise).
  std::span<const core::TokenChunk> finish();

  // ---- Any thread ----

  /// Chunks admitted and not yet decoded (in transit, staged or being decoded).
  uint64_t waiting() const { return admitted_.load() - decoded_.load(); }
  DecoderInboxStats stats() const;

 private:
  /// How many staged chunks form a complete batch now (0: wait for more).
  size_t ready() const;

  const uint64_t capacity_;
  const size_t max_batch_;
  const GroupSize group_size_;

  std::atomic<uint64_t> admitted_{0};
  std::atomic<uint64_t> shed_{0};
  std::atomic<uint64_t> max_waiting_{0};  // written by the sending side only
  std::atomic<uint64_t> received_{0};     // written by the decoder side only
  std::atomic<uint64_t> decoded_{0};      // written by the decoder side only

  // Decoder side only.
  std::vector<core::TokenChunk> staged_;  ///< received, not yet decoded, in admission order
  size_t batch_size_ = 0;                 ///< chunks of the batch handed out (0: none)
  uint64_t next_admission_ = 0;           ///< admission number of the next chunk to decode
  bool batch_is_staged_ = false;          ///< ... taken from staged_ (else: arrive()'s chunk)
};

}  // namespace spikeflow::pipeline
