// DecoderInbox on its own: the shedding rule at its capacity, its counters, and the batching
// rule (alone when nothing is pending; every pending chunk at once after a stall, up to
// max_batch; exactly the recorded group in exact replay). Both sides are driven from the test
// thread, in the orders the graph can produce.
#include <gtest/gtest.h>

#include <vector>

#include "core/chunk_flags.h"
#include "pipeline/decoder_inbox.h"

namespace spikeflow::pipeline {
namespace {

core::TokenChunk chunk(int64_t seq, int tokens = 3) {
  core::TokenChunk c;
  c.seq = seq;
  for (int i = 0; i < tokens; ++i) {
    c.unit.push_back(i);
    c.offset_s.push_back(0.001f * static_cast<float>(i));
  }
  return c;
}

std::vector<int64_t> seqs(std::span<const core::TokenChunk> batch) {
  std::vector<int64_t> s;
  for (const auto& c : batch) s.push_back(c.seq);
  return s;
}

TEST(DecoderInboxTest, a_chunk_with_nothing_pending_is_decoded_alone_without_a_copy) {
  DecoderInbox inbox(/*capacity=*/10, /*max_batch=*/64);
  for (int64_t seq = 0; seq < 3; ++seq) {
    auto c = chunk(seq);
    EXPECT_FALSE(inbox.admit(c));
    const auto batch = inbox.arrive(c);
    ASSERT_EQ(batch.size(), 1u);
    EXPECT_EQ(batch.data(), &c) << "decoded where it lies";
    EXPECT_EQ(inbox.waiting(), 1u);
    EXPECT_TRUE(inbox.finish().empty());
    EXPECT_EQ(inbox.waiting(), 0u);
  }
  const auto s = inbox.stats();
  EXPECT_EQ(s.admitted, 3u);
  EXPECT_EQ(s.received, 3u);
  EXPECT_EQ(s.decoded, 3u);
  EXPECT_EQ(s.shed, 0u);
  EXPECT_EQ(s.max_waiting, 1u);
}

TEST(DecoderInboxTest, after_a_stall_every_pending_chunk_is_handed_over_at_once) {
  DecoderInbox inbox(10, 64);
  // Five chunks admitted while the decoder was busy; they reach it one by one.
  std::vector<core::TokenChunk> sent;
  for (int64_t seq = 0; seq < 5; ++seq) {
    sent.push_back(chunk(seq));
    inbox.admit(sent.back());
  }
  for (int64_t seq = 0; seq < 4; ++seq) {
    EXPECT_TRUE(inbox.arrive(sent[static_cast<size_t>(seq)]).empty())
        << "more are on their way: wait";
  }
  const auto batch = inbox.arrive(sent[4]);
  EXPECT_EQ(seqs(batch), (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_EQ(batch[2].unit, sent[2].unit) << "tokens kept";
  EXPECT_EQ(inbox.waiting(), 5u) << "waiting until decoded";
  EXPECT_TRUE(inbox.finish().empty());
  EXPECT_EQ(inbox.waiting(), 0u);
  EXPECT_EQ(inbox.stats().max_waiting, 5u);
}

TEST(DecoderInboxTest, a_catch_up_batch_is_at_most_max_batch) {
  DecoderInbox inbox(100, /*max_batch=*/4);
  std::vector<core::TokenChunk> sent;
  for (int64_t seq = 0; seq < 10; ++seq) {
    sent.push_back(chunk(seq));
    inbox.admit(sent.back());
  }
  std::vector<std::vector<int64_t>> batches;
  for (auto& c : sent) {
    for (auto b = inbox.arrive(c); !b.empty(); b = inbox.finish()) batches.push_back(seqs(b));
  }
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[0], (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(batches[1], (std::vector<int64_t>{4, 5, 6, 7}));
  EXPECT_EQ(batches[2], (std::vector<int64_t>{8, 9}))
      << "the rest, once nothing more is on its way";
  EXPECT_EQ(inbox.stats().decoded, 10u);
}

TEST(DecoderInboxTest, past_capacity_tokens_are_shed_flagged_and_counted) {
  DecoderInbox inbox(/*capacity=*/3, 64);
  std::vector<core::TokenChunk> sent;
  for (int64_t seq = 0; seq < 6; ++seq) {
    sent.push_back(chunk(seq, 5));
    EXPECT_EQ(inbox.admit(sent.back()), seq >= 3) << "seq " << seq;
  }
  for (size_t i = 0; i < sent.size(); ++i) {
    const bool shed = i >= 3;
    EXPECT_EQ(core::has_flag(sent[i].flags, core::ChunkFlag::kBacklogShed), shed);
    EXPECT_EQ(core::has_flag(sent[i].flags, core::ChunkFlag::kEmpty), shed);
    EXPECT_EQ(sent[i].size(), shed ? 0u : 5u);
  }
  EXPECT_EQ(inbox.stats().shed, 3u);
  EXPECT_EQ(inbox.stats().max_waiting, 6u);

  // Once the decoder caught up, chunks keep their tokens again.
  std::vector<std::vector<int64_t>> batches;
  for (auto& c : sent) {
    for (auto b = inbox.arrive(c); !b.empty(); b = inbox.finish()) batches.push_back(seqs(b));
  }
  ASSERT_EQ(batches.size(), 1u);
  EXPECT_EQ(batches[0].size(), 6u) << "shed chunks are still decoded, as empty";
  auto next = chunk(6, 5);
  EXPECT_FALSE(inbox.admit(next));
  EXPECT_EQ(next.size(), 5u);
  EXPECT_EQ(inbox.stats().shed, 3u);
}

TEST(DecoderInboxTest, capacity_zero_sheds_every_chunk_but_keeps_it) {
  DecoderInbox inbox(0, 64);
  auto c = chunk(1, 4);
  EXPECT_TRUE(inbox.admit(c));
  const auto b = inbox.arrive(c);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_TRUE(b[0].empty());
  EXPECT_TRUE(inbox.finish().empty());
}

TEST(DecoderInboxTest, exact_replay_decodes_exactly_the_recorded_groups) {
  // Recorded live: {0}, {1, 2, 3}, {4}, {5, 6}.
  auto group = [](const core::TokenChunk& first) -> size_t {
    switch (first.seq) {
      case 1:
        return 3;
      case 5:
        return 2;
      default:
        return 1;
    }
  };
  DecoderInbox inbox(100, /*max_batch=*/2, group);  // max_batch does not cut a recorded group
  std::vector<core::TokenChunk> sent;
  for (int64_t seq = 0; seq < 7; ++seq) {
    sent.push_back(chunk(seq));
    inbox.admit(sent.back());  // all admitted up front: grouping must not depend on timing
  }
  std::vector<std::vector<int64_t>> batches;
  for (auto& c : sent) {
    for (auto b = inbox.arrive(c); !b.empty(); b = inbox.finish()) batches.push_back(seqs(b));
  }
  EXPECT_EQ(batches, (std::vector<std::vector<int64_t>>{{0}, {1, 2, 3}, {4}, {5, 6}}));
}

TEST(DecoderInboxTest, an_incomplete_group_stays_waiting) {
  DecoderInbox inbox(100, 64, [](const core::TokenChunk&) { return size_t{3}; });
  auto a = chunk(0);
  auto b = chunk(1);
  inbox.admit(a);
  inbox.admit(b);
  EXPECT_TRUE(inbox.arrive(a).empty());
  EXPECT_TRUE(inbox.arrive(b).empty());
  EXPECT_EQ(inbox.waiting(), 2u) << "reported at shutdown";
}

TEST(DecoderInboxTest, misuse_is_an_error_not_a_silent_loss) {
  EXPECT_THROW(DecoderInbox(10, 0), std::invalid_argument);
  DecoderInbox inbox(10, 64);
  auto a = chunk(0);
  auto b = chunk(1);
  inbox.admit(a);
  ASSERT_EQ(inbox.arrive(a).size(), 1u);
  EXPECT_THROW(inbox.arrive(b), std::logic_error) << "the last batch was never finished";
}

// oneTBB may hand the decoder node two queued chunks in the other order (seen under load: chunk
// 80 before 79). The inbox decodes strictly in admission order whatever order they arrive in.
TEST(DecoderInboxTest, chunks_arriving_out_of_order_are_decoded_in_admission_order) {
  DecoderInbox inbox(100, 64);
  std::vector<core::TokenChunk> sent;
  for (int64_t seq = 0; seq < 4; ++seq) {
    sent.push_back(chunk(seq));
    inbox.admit(sent.back());
  }
  EXPECT_TRUE(inbox.arrive(sent[1]).empty()) << "chunk 0 is still due";
  EXPECT_TRUE(inbox.arrive(sent[0]).empty()) << "2 and 3 are still on their way";
  EXPECT_TRUE(inbox.arrive(sent[3]).empty());
  auto batch = inbox.arrive(sent[2]);
  EXPECT_EQ(seqs(batch), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_TRUE(inbox.finish().empty());
  // Alone and in order again afterwards.
  sent.push_back(chunk(4));
  inbox.admit(sent.back());
  EXPECT_EQ(seqs(inbox.arrive(sent[4])), (std::vector<int64_t>{4}));
}

}  // namespace
}  // namespace spikeflow::pipeline
