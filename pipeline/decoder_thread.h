// DecoderThread: the one thread the decoder stage runs on. The graph's decoder node (an
// async_node, pipeline/live_pipeline.cpp) hands it each tokenized chunk; it runs the decoder and
// hands the predictions back to the graph (the publisher) from this thread.
//
// Why a thread of its own rather than whichever TBB worker is free: the decoder steps once per
// chunk, 50 ms apart, and its weights, code and work buffers must be in the cache of the core
// that steps. With the step on any of the graph's workers, the core changed from chunk to chunk
// and a warm-up ran on a core the step might not use. Here one thread does both:
//   - warm-up: at the next chunk's expected close (the binner's last close + one chunk width)
//     minus warm_margin_ns, with no chunk pending, on_warm() runs on this thread (at most once
//     per close);
//   - spin (spin_ns > 0): after the warm-up the thread polls for the chunk instead of sleeping,
//     until spin_ns past the expected close, so the hand-off from the ingest thread costs a
//     cache line rather than a wake-up (a core's time of margin + spin per chunk);
//   - otherwise it sleeps on a condition variable until a chunk, the warm-up time, or stop.
// Chunks are handed to on_chunk() one at a time, in push order; after the last queued one,
// on_idle() (the decoder's state-only work for the next step). Its real-time settings (affinity,
// SCHED_FIFO) are applied by on_start() on the thread itself before it takes work; a failure
// there fails start().
// Thread contract: push() from one thread at a time (the serial decoder node); start()/stop()
// from the control thread. stop() returns once every pushed chunk went through on_chunk().
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "core/token_chunk.h"
#include "pipeline/pipeline_config.h"

namespace spikeflow::pipeline {

struct DecoderThreadOptions {
  int64_t chunk_width_ns = 50'000'000;
  int64_t warm_margin_ns = 0;  ///< 0: no warm-up (clamped to half a width by the caller)
  int64_t spin_ns = 0;         ///< 0: sleep while waiting for the chunk
};

/// The options of the pipeline's decoder thread: the chunk width, decoder.warmup_margin_us (at most
/// half a width, so that a short chunk is never warmed for before the previous one is decoded) and
/// decoder.spin_us. The profile's paced loop warms by the same margin.
DecoderThreadOptions decoder_thread_options(const PipelineConfig& config);

struct DecoderThreadHooks {
  std::function<void()> on_start;                         ///< on the thread, first; may throw
  std::function<void(const core::TokenChunk&)> on_chunk;  ///< decode and hand on (noexcept)
  std::function<void()> on_idle;                          ///< queue empty after a chunk
  std::function<void()> on_warm;                          ///< the warm-up (noexcept)
  /// Host time (core::host_now_ns) the binner last closed chunks; 0 before the first.
  std::function<int64_t()> last_close_ns;
};

struct DecoderThreadStats {
  uint64_t chunks = 0;       ///< handed to on_chunk
  uint64_t warmups = 0;      ///< on_warm calls
  uint64_t spins = 0;        ///< waits that polled for a chunk
  uint64_t spin_caught = 0;  ///< ... and saw it arrive while polling
};

class DecoderThread {
 public:
  DecoderThread(DecoderThreadOptions options, DecoderThreadHooks hooks);
  ~DecoderThread();
  DecoderThread(const DecoderThread&) = delete;
  DecoderThread& operator=(const DecoderThread&) = delete;

  /// Starts the thread; rethrows what on_start threw.
  void start();
  /// Queues a chunk for on_chunk (any time after construction; before start() it waits). After
  /// stop() on a thread that never ran, runs on_chunk on the caller.
  void push(core::TokenChunk chunk);
  /// Runs every queued chunk (on the thread, or here when it never ran), then joins. Idempotent.
  void stop();
  /// start() succeeded and stop() has not joined it yet (control thread).
  bool running() const { return thread_.joinable(); }

  /// Chunks pushed and not yet through on_chunk.
  uint64_t pending() const { return pending_.load(std::memory_order_acquire); }
  DecoderThreadStats stats() const;

 private:
  void run();
  /// Takes the front chunk (lock held), runs on_chunk without the lock, retakes it. Returns true
  /// when nothing was pending after it.
  bool run_next(std::unique_lock<std::mutex>& lock);
  /// The next warm-up moment (host ns) for this close, or 0 when none is due.
  int64_t warm_at(int64_t last_close) const;

  const DecoderThreadOptions options_;
  const DecoderThreadHooks hooks_;

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<core::TokenChunk> queue_;  // guarded by mutex_
  bool stop_ = false;                   // guarded by mutex_
  bool has_thread_ = false;             // guarded by mutex_: start() succeeded
  std::atomic<uint64_t> pending_{0};    // queue_.size() plus the chunk in on_chunk
  std::atomic<bool> stopping_{false};   // stop_, for the spin loop without the lock

  std::atomic<uint64_t> chunks_{0}, warmups_{0}, spins_{0}, spin_caught_{0};
  std::thread thread_;
};

}  // namespace spikeflow::pipeline
