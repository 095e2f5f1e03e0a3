#include "pipeline/decoder_thread.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>
#include <future>

#include "core/time.h"

namespace spikeflow::pipeline {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

std::chrono::steady_clock::time_point at_host_ns(int64_t ns) {
  // core::host_now_ns is steady_clock's count (core/time.h).
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(
          std::chrono::nanoseconds(ns)));
}

}  // namespace

DecoderThreadOptions decoder_thread_options(const PipelineConfig& config) {
  DecoderThreadOptions o;
  o.chunk_width_ns = config.chunking.width_ns;
  o.warm_margin_ns = std::min<int64_t>(int64_t{config.decoder.warmup_margin_us} * 1000,
                                       config.chunking.width_ns / 2);
  o.spin_ns = int64_t{config.decoder.spin_us} * 1000;
  return o;
}

DecoderThread::DecoderThread(DecoderThreadOptions options, DecoderThreadHooks hooks)
    : options_(options), hooks_(std::move(hooks)) {}

DecoderThread::~DecoderThread() { stop(); }

void DecoderThread::start() {
  if (thread_.joinable()) return;
  std::promise<void> ready;
  auto started = ready.get_future();
  thread_ = std::thread([this, ready = std::move(ready)]() mutable {
    pthread_setname_np(pthread_self(), "sf-decoder");
    try {
      if (hooks_.on_start) hooks_.on_start();
    } catch (...) {
      ready.set_exception(std::current_exception());
      return;
    }
    ready.set_value();
    run();
  });
  try {
    started.get();
  } catch (...) {
    thread_.join();
    throw;
  }
  std::lock_guard lock(mutex_);
  has_thread_ = true;
}

void DecoderThread::push(core::TokenChunk chunk) {
  {
    std::unique_lock lock(mutex_);
    if (stop_ && !has_thread_) {  // stopped without a thread: the caller runs it
      lock.unlock();
      pending_.fetch_add(1, std::memory_order_acq_rel);
      hooks_.on_chunk(chunk);
      chunks_.fetch_add(1, std::memory_order_relaxed);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
      return;
    }
    queue_.push_back(std::move(chunk));
    pending_.fetch_add(1, std::memory_order_release);
  }
  cv_.notify_one();
}

void DecoderThread::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stop_) return;
    stop_ = true;
  }
  stopping_.store(true, std::memory_order_relaxed);
  cv_.notify_one();
  if (thread_.joinable()) {
    thread_.join();
    return;
  }
  // Never started (or on_start failed): what was queued still goes through, here.
  std::unique_lock lock(mutex_);
  while (!queue_.empty()) run_next(lock);
}

bool DecoderThread::run_next(std::unique_lock<std::mutex>& lock) {
  core::TokenChunk c = std::move(queue_.front());
  queue_.pop_front();
  lock.unlock();
  hooks_.on_chunk(c);
  chunks_.fetch_add(1, std::memory_order_relaxed);
  const bool idle = pending_.fetch_sub(1, std::memory_order_acq_rel) == 1;
  lock.lock();
  return idle;
}

int64_t DecoderThread::warm_at(int64_t last_close) const {
  if (options_.warm_margin_ns <= 0 || last_close <= 0 || !hooks_.on_warm) return 0;
  return last_close + options_.chunk_width_ns - options_.warm_margin_ns;
}

void DecoderThread::run() {
  int64_t warmed_after = 0;  // the close whose successor has been warmed for
  std::unique_lock lock(mutex_);
  for (;;) {
    if (!queue_.empty()) {
      if (run_next(lock) && hooks_.on_idle) {
        lock.unlock();
        hooks_.on_idle();
        lock.lock();
      }
      continue;
    }
    if (stop_) return;
    const int64_t last_close = hooks_.last_close_ns ? hooks_.last_close_ns() : 0;
    const int64_t warm = last_close != warmed_after ? warm_at(last_close) : 0;
    if (warm == 0) {
      cv_.wait(lock);  // a chunk (whose close also moves last_close) or stop
      continue;
    }
    if (core::host_now_ns() < warm) {
      cv_.wait_until(lock, at_host_ns(warm));
      continue;  // re-check: a chunk may have come, or the binner closed again
    }
    warmed_after = last_close;
    lock.unlock();
    hooks_.on_warm();
    warmups_.fetch_add(1, std::memory_order_relaxed);
    if (options_.spin_ns > 0) {
      // Poll for the chunk until spin_ns past its expected close; stop() ends it at once.
      const int64_t until = last_close + options_.chunk_width_ns + options_.spin_ns;
      spins_.fetch_add(1, std::memory_order_relaxed);
      uint32_t n = 0;
      while (pending_.load(std::memory_order_acquire) == 0) {
        cpu_relax();
        if ((++n & 63) != 0) continue;
        if (core::host_now_ns() >= until || stopping_.load(std::memory_order_relaxed)) break;
      }
      if (pending_.load(std::memory_order_acquire) > 0)
        spin_caught_.fetch_add(1, std::memory_order_relaxed);
    }
    lock.lock();
  }
}

DecoderThreadStats DecoderThread::stats() const {
  DecoderThreadStats s;
  s.chunks = chunks_.load(std::memory_order_relaxed);
  s.warmups = warmups_.load(std::memory_order_relaxed);
  s.spins = spins_.load(std::memory_order_relaxed);
  s.spin_caught = spin_caught_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace spikeflow::pipeline
