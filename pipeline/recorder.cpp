#include "pipeline/recorder.h"

#include <pthread.h>

#include <chrono>
#include <fmt/format.h>
#include <fstream>
#include <mutex>
#include <spdlog/spdlog.h>
#include <tbb/concurrent_queue.h>
#include <thread>
#include <variant>

#include "core/checksum.h"
#include "replay/recording_file.h"

namespace spikeflow::pipeline {

// The recorder thread polls its queue every kPollInterval instead of blocking on it: a blocking
// pop made every record() wake the thread, which then wrote and flushed right away, on one of the
// two cores, exactly when the binner was closing a chunk (arrival -> close p50 +15-25 us).
// Polling batches the writes; a record reaches the OS within kPollInterval (+ the 100 ms flush).
constexpr auto kPollInterval = std::chrono::milliseconds(5);
// Dropped records are logged at most this often (from the recorder thread, never the graph's).
constexpr auto kDropLogInterval = std::chrono::seconds(1);

struct Recorder::Impl {
  using Item = std::variant<std::monostate /* stop */, core::EventBatch, core::Prediction>;
  replay::RecordingWriter writer;
  tbb::concurrent_bounded_queue<Item> queue;
  std::thread thread;
  size_t capacity = 0;
  std::atomic<uint64_t> dropped{0};
  uint64_t dropped_logged = 0;  // recorder thread
  std::chrono::steady_clock::time_point last_drop_log{};
  mutable std::mutex stats_mutex;
  RecorderStats stats;
  bool stopped = false;

  void run() {
    pthread_setname_np(pthread_self(), "sf-recorder");
    auto last_flush = std::chrono::steady_clock::now();
    Item item;
    for (;;) {
      if (!queue.try_pop(item)) {
        // Caught up: hand what is buffered to the OS, then wait for the next poll.
        writer.flush();
        update_stats();
        last_flush = std::chrono::steady_clock::now();
        log_drops(/*force=*/false);
        while (!queue.try_pop(item)) std::this_thread::sleep_for(kPollInterval);
      }
      if (std::holds_alternative<std::monostate>(item)) break;
      if (auto* b = std::get_if<core::EventBatch>(&item)) {
        writer.write_events(*b);
      } else {
        writer.write_prediction(std::get<core::Prediction>(item));
      }
      if (std::chrono::steady_clock::now() - last_flush > std::chrono::milliseconds(100)) {
        writer.flush();
        last_flush = std::chrono::steady_clock::now();
        log_drops(/*force=*/false);
      }
      update_stats();
    }
    writer.close();
    update_stats();
    log_drops(/*force=*/true);
    if (!writer.ok()) spdlog::error("recorder: {}", writer.error());
  }

  void log_drops(bool force) {
    const uint64_t total = dropped.load();
    if (total == dropped_logged) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && now - last_drop_log < kDropLogInterval) return;
    spdlog::warn(
        "recorder: {} record(s) dropped, queue full (capacity {}; {} dropped in all): the "
        "recording "
        "misses them",
        total - dropped_logged, capacity, total);
    dropped_logged = total;
    last_drop_log = now;
  }

  void update_stats() {
    const auto& c = writer.counters();
    std::lock_guard lock(stats_mutex);
    stats.batches = c.event_records;
    stats.predictions = c.prediction_records;
    stats.io_errors = c.io_errors;
    stats.bytes = c.bytes_written;
  }
};

Recorder::Recorder(const std::string& path, const std::string& config_text,
                   const std::string& model_description, const std::string& model_identity,
                   const std::vector<core::UnitKey>& units, size_t queue_capacity)
    : impl_(std::make_unique<Impl>()) {
  impl_->writer.open(path);
  impl_->writer.write_config(config_text);
  impl_->writer.write_model(model_description, model_identity);
  impl_->writer.write_units(units);
  impl_->writer.flush();
  impl_->capacity = queue_capacity;
  impl_->queue.set_capacity(static_cast<std::ptrdiff_t>(queue_capacity));
  impl_->thread = std::thread([this] { impl_->run(); });
}

Recorder::~Recorder() { stop(); }

void Recorder::record(const core::EventBatch& batch) {
  if (!impl_->queue.try_push(Impl::Item(batch))) impl_->dropped.fetch_add(1);
}

void Recorder::record(const core::Prediction& prediction) {
  if (!impl_->queue.try_push(Impl::Item(prediction))) impl_->dropped.fetch_add(1);
}

void Recorder::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  impl_->queue.push(Impl::Item(std::monostate{}));  // after everything already queued
  if (impl_->thread.joinable()) impl_->thread.join();
}

RecorderStats Recorder::stats() const {
  std::lock_guard lock(impl_->stats_mutex);
  RecorderStats s = impl_->stats;
  s.dropped = impl_->dropped.load();
  return s;
}

std::string file_identity(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "unreadable";
  uint64_t h = core::kFnv1a64Basis;
  uint64_t size = 0;
  char buf[1 << 16];
  while (in) {
    in.read(buf, sizeof buf);
    const auto n = static_cast<size_t>(in.gcount());
    h = core::fnv1a64_update(h, {reinterpret_cast<const uint8_t*>(buf), n});
    size += n;
  }
  return fmt::format("{}:{:016x}", size, h);
}

}  // namespace spikeflow::pipeline
