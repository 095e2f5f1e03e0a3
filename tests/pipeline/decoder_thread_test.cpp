// DecoderThread on its own (a real thread, no graph): every chunk goes through on_chunk once, in
// push order, on the one decoder thread; on_idle follows the last queued chunk; the warm-up runs
// on the same thread once per close, before the chunk it is for; a spinning wait catches the chunk
// without sleeping; stop() runs what is queued; a failing on_start fails start(). Waits are
// conditions with deadlines, never sleeps.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/time.h"
#include "pipeline/decoder_thread.h"
#include "tests/common/test_support.h"

namespace spikeflow::pipeline {
namespace {

core::TokenChunk chunk(int64_t seq) {
  core::TokenChunk c;
  c.seq = seq;
  return c;
}

/// What the hooks saw, from whichever thread called them.
struct Seen {
  std::mutex m;
  std::vector<int64_t> seqs;
  std::vector<std::thread::id> threads;  // of on_chunk and on_warm calls, in order
  std::vector<char> kinds;               // 'c' chunk, 'i' idle, 'w' warm
  std::atomic<int64_t> last_close{0};

  DecoderThreadHooks hooks() {
    DecoderThreadHooks h;
    h.on_chunk = [this](const core::TokenChunk& c) {
      std::lock_guard lock(m);
      seqs.push_back(c.seq);
      threads.push_back(std::this_thread::get_id());
      kinds.push_back('c');
    };
    h.on_idle = [this] {
      std::lock_guard lock(m);
      kinds.push_back('i');
    };
    h.on_warm = [this] {
      std::lock_guard lock(m);
      threads.push_back(std::this_thread::get_id());
      kinds.push_back('w');
    };
    h.last_close_ns = [this] { return last_close.load(); };
    return h;
  }
  size_t count(char kind) {
    std::lock_guard lock(m);
    return static_cast<size_t>(std::count(kinds.begin(), kinds.end(), kind));
  }
};

TEST(DecoderThreadTest, every_chunk_once_in_order_on_one_thread_then_idle) {
  Seen seen;
  DecoderThread t(DecoderThreadOptions{}, seen.hooks());
  t.start();
  std::mt19937 rng(7);
  int64_t seq = 0;
  for (int round = 0; round < 50; ++round) {
    const int n = static_cast<int>(rng() % 5) + 1;  // bursts, so some wait in the queue
    for (int i = 0; i < n; ++i) t.push(chunk(seq++));
    if (rng() % 2) {
      ASSERT_TRUE(testing::wait_until([&] { return t.pending() == 0; }));
    }
  }
  t.stop();
  EXPECT_EQ(t.pending(), 0u);
  std::lock_guard lock(seen.m);
  ASSERT_EQ(seen.seqs.size(), static_cast<size_t>(seq));
  for (int64_t i = 0; i < seq; ++i) EXPECT_EQ(seen.seqs[static_cast<size_t>(i)], i);
  for (const auto& id : seen.threads) {
    EXPECT_EQ(id, seen.threads.front());
    EXPECT_NE(id, std::this_thread::get_id());
  }
  // on_idle only ever right after a chunk, and after the very last one.
  ASSERT_FALSE(seen.kinds.empty());
  EXPECT_EQ(seen.kinds.back(), 'i');
  for (size_t i = 0; i < seen.kinds.size(); ++i)
    if (seen.kinds[i] == 'i') {
      EXPECT_TRUE(i > 0 && seen.kinds[i - 1] == 'c') << i;
    }
  EXPECT_EQ(t.stats().chunks, static_cast<uint64_t>(seq));
}

TEST(DecoderThreadTest, warms_once_per_close_on_the_decoder_thread_before_the_chunk) {
  Seen seen;
  DecoderThreadOptions o;
  o.chunk_width_ns = 40'000'000;
  o.warm_margin_ns = 20'000'000;  // warm 20 ms after each close
  DecoderThread t(o, seen.hooks());
  t.start();
  for (int k = 1; k <= 5; ++k) {
    seen.last_close.store(core::host_now_ns());  // the binner closed a chunk...
    t.push(chunk(k));                            // ...and it reached the decoder
    // The warm-up for the next close comes by itself, on the decoder thread.
    ASSERT_TRUE(testing::wait_until([&] { return seen.count('w') >= static_cast<size_t>(k); }));
  }
  t.stop();
  std::lock_guard lock(seen.m);
  // Exactly one warm-up per close, each after that close's chunk (never ahead of a chunk).
  EXPECT_EQ(std::count(seen.kinds.begin(), seen.kinds.end(), 'w'), 5);
  std::vector<char> no_idle;
  for (char c : seen.kinds)
    if (c != 'i') no_idle.push_back(c);
  EXPECT_EQ(no_idle, (std::vector<char>{'c', 'w', 'c', 'w', 'c', 'w', 'c', 'w', 'c', 'w'}));
  for (const auto& id : seen.threads) EXPECT_EQ(id, seen.threads.front());
  EXPECT_EQ(t.stats().warmups, 5u);
}

TEST(DecoderThreadTest, no_warmup_without_a_margin_or_before_the_first_close) {
  Seen seen;
  DecoderThread off(DecoderThreadOptions{}, seen.hooks());  // margin 0
  off.start();
  seen.last_close.store(core::host_now_ns());
  off.push(chunk(0));
  ASSERT_TRUE(testing::wait_until([&] { return off.pending() == 0; }));
  off.stop();
  EXPECT_EQ(seen.count('w'), 0u);
  EXPECT_EQ(off.stats().warmups, 0u);
}

TEST(DecoderThreadTest, a_spinning_wait_catches_the_chunk) {
  Seen seen;
  DecoderThreadOptions o;
  o.chunk_width_ns = 20'000'000;
  o.warm_margin_ns = 10'000'000;
  o.spin_ns = 60'000'000'000;  // long enough for any loaded machine; stop() ends it
  DecoderThread t(o, seen.hooks());
  t.start();
  // A close comes with its chunk (the binner sets the close time, then the chunk follows).
  seen.last_close.store(core::host_now_ns());
  t.push(chunk(0));
  ASSERT_TRUE(testing::wait_until([&] { return t.stats().spins == 1; }));
  t.push(chunk(1));  // arrives while the thread polls
  ASSERT_TRUE(testing::wait_until([&] { return t.stats().chunks == 2; }));
  EXPECT_EQ(t.stats().spin_caught, 1u);
  // The next close (its chunk), then a spin that nothing ends but stop().
  seen.last_close.store(core::host_now_ns());
  t.push(chunk(2));
  ASSERT_TRUE(testing::wait_until([&] { return t.stats().spins == 2; }));
  t.stop();
  EXPECT_EQ(t.stats().spin_caught, 1u);
}

TEST(DecoderThreadTest, stop_runs_what_is_queued_even_without_a_thread) {
  Seen seen;
  DecoderThread t(DecoderThreadOptions{}, seen.hooks());
  for (int i = 0; i < 4; ++i) t.push(chunk(i));
  EXPECT_EQ(t.pending(), 4u);
  t.stop();          // never started: runs them here
  t.push(chunk(4));  // after such a stop: on the caller
  std::lock_guard lock(seen.m);
  EXPECT_EQ(seen.seqs, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  for (const auto& id : seen.threads) EXPECT_EQ(id, std::this_thread::get_id());
  EXPECT_EQ(t.pending(), 0u);
}

TEST(DecoderThreadTest, a_failing_on_start_fails_start) {
  Seen seen;
  auto hooks = seen.hooks();
  hooks.on_start = [] { throw std::runtime_error("realtime.affinity.decoder: no"); };
  DecoderThread t(DecoderThreadOptions{}, hooks);
  try {
    t.start();
    FAIL() << "start() succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "realtime.affinity.decoder: no");
  }
  EXPECT_FALSE(t.running());
  t.push(chunk(0));
  t.stop();
  EXPECT_EQ(seen.count('c'), 1u);
}

}  // namespace
}  // namespace spikeflow::pipeline
