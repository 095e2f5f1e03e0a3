#include "pipeline/live_pipeline.h"

#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <fmt/format.h>
#include <future>
#include <mutex>
#include <spdlog/spdlog.h>
#include <tbb/flow_graph.h>
#include <tbb/global_control.h>
#include <tbb/parallel_invoke.h>
#include <tbb/task_arena.h>
#include <thread>
#include <variant>

#include "core/time.h"
#include "pipeline/decoder_inbox.h"
#include "pipeline/decoder_thread.h"
#include "pipeline/ingest.h"
#include "pipeline/realtime.h"
#include "pipeline/recorder.h"
#include "pipeline/zmq_publisher.h"
#include "stages/binner.h"
#include "stages/decode_stage.h"
#include "stages/publish_guard.h"
#include "stages/tokenizer.h"

namespace spikeflow::pipeline {

namespace flow = tbb::flow;

namespace {

// ---- What travels on the graph's edges ----
struct Tick {
  int64_t host_ns;
};
struct EndOfStream {
  int64_t host_ns;
};
using BinnerInput = std::variant<core::EventBatch, Tick, EndOfStream>;
/// The ticker's signal that the stats topic is due: it keeps ticking when no prediction flows
/// (before the first packet, or with the ingest down). Carries no data.
struct StatsDue {};
using PublisherInput = std::variant<core::Prediction, StatsDue>;

// ---- The nodes ----
// Every node is serial and lightweight: its body runs inline on the thread that puts to it when
// the node is free (no task, no thread woken), and waits in the node's queue, taken up by a
// graph worker, when it is busy. So a packet is binned and tokenized on the ingest thread that
// received it, a deadline tick's chunks on the ticker thread, and a prediction is published on
// the decoder thread that made it; the one hand-off on the data path is the decoder node's (an
// async_node) to the decoder thread (pipeline/decoder_thread.h). Lightweight bodies must be
// noexcept (LivePipeline::Impl::guarded).
using Policy = flow::queueing_lightweight;
using BinnerNode =
    flow::multifunction_node<BinnerInput, std::tuple<core::RawChunk, BinnerInput>, Policy>;
constexpr size_t kClosedChunks = 0;  ///< chunks the input closed, in seq order
constexpr size_t kBinnedInput = 1;   ///< each packet, and each tick that closed chunks, once binned
using TokenizerNode =
    flow::multifunction_node<core::RawChunk, std::tuple<core::TokenChunk>, Policy>;
using DecoderNode = flow::async_node<core::TokenChunk, PublisherInput, Policy>;
using PublisherNode =
    flow::multifunction_node<PublisherInput, std::tuple<core::Prediction>, Policy>;
constexpr size_t kPublished = 0;  ///< each prediction once it is on the wire
/// A tap: runs inline on the sender's thread, after the sender handed its output on. Serial.
template <typename T>
using TapNode = flow::function_node<T, flow::continue_msg, Policy>;

void record_span(core::LatencyHistogram& h, int64_t from, int64_t to) {
  if (from > 0 && to >= from) h.record(to - from);
}

/// The publisher, on a context whose I/O threads take realtime.affinity.zmq_io and SCHED_FIFO
/// (set before the first socket starts them).
std::unique_ptr<ZmqPublisher> make_publisher(zmq::context_t& context, const PipelineConfig& cfg) {
  if (!cfg.publish.enabled) return nullptr;
  configure_io_threads(context, cfg.realtime);
  return std::make_unique<ZmqPublisher>(context, cfg.publish);
}

}  // namespace

// ---- The graph: the data path, declared in one place (LivePipeline::Graph::Graph). ----
struct LivePipeline::Graph {
  explicit Graph(LivePipeline::Impl& p);
  flow::graph graph;
  BinnerNode binner;
  TokenizerNode tokenizer;
  DecoderNode decoder;
  PublisherNode publisher;
  TapNode<BinnerInput> record_packets;
  TapNode<BinnerInput> on_batch;
  TapNode<core::Prediction> record_predictions;
  TapNode<core::Prediction> on_prediction;
  TapNode<core::Prediction> metrics;
};

struct LivePipeline::Impl {
  Impl(const PipelineConfig& cfg, std::unique_ptr<models::StreamingDecoder> dec, LiveOptions opts)
      : config(cfg),
        options(std::move(opts)),
        binner(cfg.chunking),
        tokenizer(core::UnitMap(dec->units())),
        inbox(static_cast<uint64_t>(std::max(0, cfg.decoder.max_backlog)),
              static_cast<size_t>(std::max(1, cfg.decoder.max_batch)), options.decode_group_size),
        decode(std::move(dec)),
        decoder_thread(decoder_thread_options(cfg), decoder_thread_hooks()),
        zmq_context(1),
        // publish.enabled false (an embedded pipeline): no socket; predictions reach the taps only.
        publisher(make_publisher(zmq_context, cfg)),
        // The graph's own workers, so every stage can run while another is busy: a slow decode
        // must not stop the binner closing chunks on time.
        parallelism(tbb::global_control::max_allowed_parallelism,
                    static_cast<size_t>(cfg.graph_threads) + 1),
        arena(cfg.graph_threads, /*reserved_for_masters=*/0) {
    const int64_t w = cfg.chunking.width_ns;
    if (decode.decoder().chunk_width_ns() != w) {
      throw std::runtime_error(
          fmt::format("chunking.width_ms is {} ms but the decoder was trained on {} ms chunks",
                      w / 1e6, decode.decoder().chunk_width_ns() / 1e6));
    }
    if (!cfg.record.path.empty()) {
      recorder = std::make_unique<Recorder>(
          cfg.record.path, to_yaml(cfg), decode.decoder().describe(), options.model_identity,
          decode.decoder().units(), static_cast<size_t>(cfg.record.queue_capacity));
    }
    // A flow graph runs its tasks in the arena it was built in. The decoder may split a batched
    // call over the arena's threads (the decoder node runs inside it, so this stays there).
    arena.execute([&] { g = std::make_unique<Graph>(*this); });
    const auto& rt = cfg.realtime;
    if (!rt.affinity_graph.empty() || rt.sched_fifo_priority > 0)
      arena_observer = std::make_unique<ArenaRealtimeObserver>(arena, rt);
    // A batched (catch-up) call may split over the graph's workers: in its arena.
    decode.set_parallel_invoke(
        [this](const std::function<void()>& a, const std::function<void()>& b) {
          arena.execute([&] { tbb::parallel_invoke(a, b); });
        });
    if (cfg.ingest.transport != Transport::kNone) {
      ingest = make_ingest(
          cfg.ingest, [this](core::EventBatch& b) { g->binner.try_put(BinnerInput(b)); },
          [rt] { apply_thread_role(rt, ThreadRole::kIngest); });
    }
  }

  // ---- Stage nodes: each calls one plain stage and hands its output on. ----

  /// A lightweight node's body: fn(in, out), noexcept. A stage that throws is a bug (stages count
  /// and repair bad input themselves): the item is dropped, counted (PipelineStats::stage_errors)
  /// and logged at most once a second, and the graph carries on.
  template <typename In, typename Out>
  auto guarded(const char* name, void (Impl::*fn)(const In&, Out&)) {
    return [this, name, fn](const In& in, Out& out) noexcept {
      try {
        (this->*fn)(in, out);
      } catch (const std::exception& e) {
        count_failure(name, e.what(), &PipelineStats::stage_errors);
      } catch (...) {
        count_failure(name, "unknown exception", &PipelineStats::stage_errors);
      }
    };
  }

  void run_binner(const BinnerInput& in, BinnerNode::output_ports_type& out) {
    closed.clear();
    if (const auto* b = std::get_if<core::EventBatch>(&in)) {
      batches_binned.fetch_add(1);
      binner.push(*b, closed);
    } else if (const auto* t = std::get_if<Tick>(&in)) {
      binner.tick(t->host_ns, closed);
    } else {
      binner.flush(std::get<EndOfStream>(in).host_ns, closed);
    }
    const int64_t now = core::host_now_ns();
    {
      std::lock_guard lock(stats_mutex);
      if (binner.stats().resyncs != stats.binner.resyncs) log_epoch_change();
      stats.binner = binner.stats();
    }
    chunks_closed.fetch_add(closed.size());
    if (!closed.empty()) last_close_ns.store(now, std::memory_order_relaxed);  // the warm-up clock
    flight_cv.notify_all();  // a push() waiting for the binner's queue to shrink
    for (auto& c : closed) {
      c.timing.close_ns = now;
      std::get<kClosedChunks>(out).try_put(std::move(c));
    }
    // The recording needs every packet and every tick that closed chunks, in this order.
    const bool closing_tick = std::holds_alternative<Tick>(in) && !closed.empty();
    if (std::holds_alternative<core::EventBatch>(in) || closing_tick)
      std::get<kBinnedInput>(out).try_put(in);
  }

  /// One line per new device-clock epoch (rare: a device restart or a clock jump). Holds
  /// stats_mutex.
  void log_epoch_change() const {
    const auto& b = binner.stats();
    const bool back = b.clock_jumps_back != stats.binner.clock_jumps_back;
    spdlog::warn(
        "binner: device clock jumped {}: epoch {} starts at chunk {} (recurrent state reset; "
        "{} jumps back, {} forward so far)",
        back ? "back" : "forward", binner.epoch(), binner.next_seq(), b.clock_jumps_back,
        b.clock_jumps_forward);
  }

  void run_tokenizer(const core::RawChunk& c, TokenizerNode::output_ports_type& out) {
    core::TokenChunk t;
    tokenizer.tokenize(c, t);
    t.timing.tokenize_ns = core::host_now_ns();
    {
      std::lock_guard lock(stats_mutex);
      stats.tokenizer = tokenizer.stats();
    }
    inbox.admit(t);  // the decoder's backlog bound: past it, the tokens are shed. Last: it counts
                     // the chunk as on its way to the decoder.
    std::get<0>(out).try_put(t);
  }

  // ---- The decoder thread (pipeline/decoder_thread.h): everything the decoder does. ----

  /// The decoder node's body, on the tokenizer's thread: one wait reserved on the graph per
  /// chunk (wait_for_all() covers the decoder thread's work), the chunk to the decoder thread.
  void hand_to_decoder(const core::TokenChunk& c, DecoderNode::gateway_type& gateway) noexcept {
    gateway.reserve_wait();
    decoder_thread.push(c);
  }

  /// A chunk, on the decoder thread: through the inbox, which gathers a catch-up batch while more
  /// chunks are on their way, to the decoder; each prediction to the publisher, which runs here.
  void decode_chunk(const core::TokenChunk& c) noexcept {
    auto& gateway = g->decoder.gateway();
    try {
      auto batch = inbox.arrive(c);
      while (!batch.empty()) {
        predictions.clear();
        decode.decode(batch, predictions);
        batch = inbox.finish();
        update_decode_stats();
        for (const auto& p : predictions) gateway.try_put(PublisherInput(p));
      }
      if (decode.stats().decoder_errors != decoder_errors_logged) {
        update_decode_stats();
        log_decoder_errors(/*force=*/false);
      }
    } catch (const std::exception& e) {
      count_failure("decoder", e.what(), &PipelineStats::stage_errors);
    } catch (...) {
      count_failure("decoder", "unknown exception", &PipelineStats::stage_errors);
    }
    gateway.release_wait();
  }

  /// On the decoder thread, next chunk due in decoder.warmup_margin_us: the decoder reads its
  /// weights, code and buffers back into this core's caches, unless a chunk is on its way.
  void warm_decoder() noexcept {
    try {
      decode.warm(/*chunk_pending=*/inbox.waiting() > 0);
      update_decode_stats();
    } catch (...) {  // DecodeStage counts decoder failures; only the stats lock could throw
    }
  }

  /// On the decoder thread, nothing queued after a chunk (its predictions are out): the
  /// decoder's state-only work for the next chunk (the fast path's W_hh h), off the critical
  /// path of both. A failure is counted in decode.stats(), like a decode's.
  void prepare_decoder() noexcept { decode.prepare_next(); }

  DecoderThreadHooks decoder_thread_hooks() {
    DecoderThreadHooks h;
    h.on_start = [this] { apply_thread_role(config.realtime, ThreadRole::kDecoder); };
    h.on_chunk = [this](const core::TokenChunk& c) { decode_chunk(c); };
    h.on_idle = [this] { prepare_decoder(); };
    h.on_warm = [this] { warm_decoder(); };
    h.last_close_ns = [this] { return last_close_ns.load(std::memory_order_relaxed); };
    return h;
  }

  void update_decode_stats() {
    std::lock_guard lock(stats_mutex);
    stats.decode = decode.stats();
  }

  void run_publisher(const PublisherInput& in, PublisherNode::output_ports_type& out) {
    if (std::holds_alternative<StatsDue>(in)) {
      std::lock_guard lock(stats_mutex);
      publish_stats_if_due_locked(core::host_now_ns());
      return;
    }
    core::Prediction p = std::get<core::Prediction>(in);
    // The live contract's last check: the wire seq, and never a chunk twice or out of order.
    if (!guard.admit(p)) {
      std::lock_guard lock(stats_mutex);
      stats.guard = guard.stats();
      spdlog::error(
          "publisher: refused epoch {} chunk {}: it would repeat or go back (a bug: please report)",
          p.epoch, p.chunk_index);
      {
        std::lock_guard flight(flight_mutex);
        ++chunks_published;  // it left the graph all the same: replay backpressure must not wait on
                             // it
      }
      flight_cv.notify_all();
      return;
    }
    if (publisher) {
      publisher->publish(p);
    } else {
      p.timing.publish_ns = core::host_now_ns();  // handed to the taps: the in-process "publish"
    }
    std::get<kPublished>(out).try_put(p);  // the taps run here, inline, in the order connected
    std::lock_guard lock(stats_mutex);
    stats.guard = guard.stats();
    if (!publisher) return;
    stats.publish = publisher->stats();
    publish_stats_if_due_locked(p.timing.publish_ns);
  }

  /// Periodic counters and latency percentiles on the stats topic, from the one node that owns
  /// the socket: after a prediction, or on the ticker's StatsDue when none flows. Holds
  /// stats_mutex.
  void publish_stats_if_due_locked(int64_t now_ns) {
    const int64_t interval = static_cast<int64_t>(config.metrics.print_interval_s * 1e9);
    if (publisher && interval > 0 && now_ns - last_stats_ns >= interval) {
      last_stats_ns = now_ns;
      publisher->publish_text(config.publish.stats_topic, stats_json(snapshot_locked()));
    }
  }

  // ---- Taps: after the data has been handed on; never on the critical path. ----

  void record_packet(const BinnerInput& in) {
    if (const auto* b = std::get_if<core::EventBatch>(&in)) {
      recorder->record(*b);
    } else if (const auto* t = std::get_if<Tick>(&in)) {
      core::EventBatch marker;
      marker.arrival_host_ns = t->host_ns;
      marker.device_time_ns = kTickMarkerDeviceTime;
      recorder->record(marker);
    }
  }

  void call_on_batch(const BinnerInput& in) {
    if (const auto* b = std::get_if<core::EventBatch>(&in)) options.on_batch(*b);
  }

  void record_prediction(const core::Prediction& p) { recorder->record(p); }

  void call_on_prediction(const core::Prediction& p) { options.on_prediction(p); }

  /// Counters and latency histograms of each published prediction; releases
  /// wait_in_flight_below(). Connected last, so that a prediction counted in stats() has been
  /// through every other tap.
  void record_metrics(const core::Prediction& p) {
    {
      std::lock_guard lock(flight_mutex);
      ++chunks_published;
    }
    flight_cv.notify_all();
    std::lock_guard lock(stats_mutex);
    ++stats.predictions;
    if (stats.last_seq >= 0 && p.seq != stats.last_seq + 1) ++stats.out_of_order;
    stats.last_seq = p.seq;
    const auto& t = p.timing;
    record_span(stats.close_latency, t.trigger_arrival_ns, t.close_ns);
    record_span(stats.queue_latency, t.close_ns, t.decode_start_ns);
    record_span(stats.decode_latency, t.decode_start_ns, t.decode_end_ns);
    record_span(stats.publish_latency, t.decode_end_ns, t.publish_ns);
    record_span(stats.total_latency, t.trigger_arrival_ns, t.publish_ns);
  }

  /// A tap node's body: fn(value), with any exception caught, counted and logged (at most once a
  /// second), so that a tap can never stop the graph.
  template <typename T>
  auto tap(const char* name, void (Impl::*fn)(const T&)) {
    return [this, name, fn](const T& value) noexcept {
      try {
        (this->*fn)(value);
      } catch (const std::exception& e) {
        count_failure(name, e.what(), &PipelineStats::tap_errors);
      } catch (...) {
        count_failure(name, "unknown exception", &PipelineStats::tap_errors);
      }
      return flow::continue_msg();
    };
  }

  /// A tap or a stage threw: counted in stats.*counter, logged at most once a second.
  void count_failure(const char* name, const char* what,
                     uint64_t PipelineStats::*counter) noexcept {
    try {
      std::lock_guard lock(stats_mutex);
      const uint64_t n = ++(stats.*counter);
      const int64_t now = core::host_now_ns();
      if (now - last_failure_log_ns < core::kNsPerS) return;
      last_failure_log_ns = now;
      spdlog::error("pipeline: {} threw: {} ({} so far; the graph carries on)", name, what, n);
    } catch (...) {  // logging itself failed: nothing more to do
    }
  }

  /// Decoder exceptions (caught and counted by DecodeStage, their chunks repaired): one line at
  /// most once a second, with the count since the last line and the last message. Decoder node
  /// (after its predictions are handed on), or stop() once the graph is idle.
  void log_decoder_errors(bool force) {
    const int64_t now = core::host_now_ns();
    if (!force && now - last_decoder_error_log_ns < core::kNsPerS) return;
    last_decoder_error_log_ns = now;
    const uint64_t total = decode.stats().decoder_errors;
    spdlog::error(
        "decoder: {} call(s) threw ({} in all; outputs repaired from the last good value, state "
        "reset); last: {}",
        total - decoder_errors_logged, total, decode.last_error());
    decoder_errors_logged = total;
  }

  /// Chunk deadlines every tick_ms, and the stats topic's StatsDue.
  void run_ticker() {
    pthread_setname_np(pthread_self(), "sf-ticker");
    using Clock = std::chrono::steady_clock;  // the clock of core::host_now_ns
    const auto period = std::chrono::nanoseconds(static_cast<int64_t>(config.tick_ms * 1e6));
    const auto stats_interval_ns = static_cast<int64_t>(config.metrics.print_interval_s * 1e9);
    int64_t last_stats_due_ns = core::host_now_ns();
    auto next = Clock::now() + period;
    std::unique_lock lock(tick_mutex);
    while (!tick_stop) {
      if (tick_cv.wait_until(lock, next, [this] { return tick_stop; })) break;
      const int64_t now_ns = core::host_now_ns();
      g->binner.try_put(BinnerInput(Tick{now_ns}));
      if (stats_interval_ns > 0 && now_ns - last_stats_due_ns >= stats_interval_ns) {
        last_stats_due_ns = now_ns;
        g->publisher.try_put(PublisherInput(StatsDue{}));
      }
      next += period;
      const auto now = std::chrono::steady_clock::now();
      if (next < now) next = now + period;  // after a stall, do not burst
    }
  }

  /// Every counter, with those kept outside stats (ingest, recorder, inbox). Holds stats_mutex.
  PipelineStats snapshot_locked() const {
    PipelineStats s = stats;
    if (!stopped && ingest) s.ingest = ingest->stats();
    if (!stopped && recorder) s.recorder = recorder->stats();
    s.inbox = inbox.stats();
    s.backlog_shed = s.inbox.shed;
    const auto dt = decoder_thread.stats();
    s.decoder_spins = dt.spins;
    s.decoder_spin_caught = dt.spin_caught;
    return s;
  }

  PipelineConfig config;
  LiveOptions options;
  stages::Binner binner;
  stages::Tokenizer tokenizer;
  DecoderInbox inbox;
  stages::DecodeStage decode;
  DecoderThread decoder_thread;  // runs decode; stopped (joined) by stop() before the rest goes
  stages::PublishGuard guard;  // publisher node
  zmq::context_t zmq_context;
  std::unique_ptr<ZmqPublisher> publisher;
  std::unique_ptr<Ingest> ingest;
  std::unique_ptr<Recorder> recorder;  // tap: its own thread, never blocks the graph

  tbb::global_control parallelism;
  tbb::task_arena arena;
  std::unique_ptr<Graph> g;
  std::unique_ptr<ArenaRealtimeObserver> arena_observer;  // before the arena goes

  std::vector<core::RawChunk> closed;         // binner node scratch
  std::vector<core::Prediction> predictions;  // decoder node scratch
  std::atomic<uint64_t> chunks_closed{0};
  std::atomic<int64_t> last_close_ns{0};  // host time the binner last closed chunks (warm-up)
  std::atomic<uint64_t> batches_pushed{0};  // push() calls
  std::atomic<uint64_t> batches_binned{0};  // ... that the binner has taken
  std::mutex flight_mutex;
  std::condition_variable flight_cv;
  uint64_t chunks_published = 0;  // guarded by flight_mutex

  std::thread ticker;
  std::mutex tick_mutex;
  std::condition_variable tick_cv;
  bool tick_stop = false;

  mutable std::mutex stats_mutex;
  PipelineStats stats;                                // guarded by stats_mutex
  int64_t last_stats_ns = 0;                          // publisher node
  int64_t last_failure_log_ns = INT64_MIN / 2;        // guarded by stats_mutex
  uint64_t decoder_errors_logged = 0;                 // decoder node; stop() once idle
  int64_t last_decoder_error_log_ns = INT64_MIN / 2;  // decoder node; stop() once idle
  bool started = false;
  std::atomic<bool> stopped{false};  // set by stop(); read by stats() from any thread
};

LivePipeline::Graph::Graph(LivePipeline::Impl& p)
    : binner(graph, flow::serial, p.guarded("binner", &Impl::run_binner)),
      tokenizer(graph, flow::serial, p.guarded("tokenizer", &Impl::run_tokenizer)),
      decoder(graph, flow::serial,
              [&p](const core::TokenChunk& c, DecoderNode::gateway_type& gateway) noexcept {
                p.hand_to_decoder(c, gateway);
              }),
      publisher(graph, flow::serial, p.guarded("publisher", &Impl::run_publisher)),
      record_packets(graph, flow::serial, p.tap("recorder", &Impl::record_packet)),
      on_batch(graph, flow::serial, p.tap("on_batch", &Impl::call_on_batch)),
      record_predictions(graph, flow::serial, p.tap("recorder", &Impl::record_prediction)),
      on_prediction(graph, flow::serial, p.tap("on_prediction", &Impl::call_on_prediction)),
      metrics(graph, flow::serial, p.tap("metrics", &Impl::record_metrics)) {
  using flow::make_edge;
  using flow::output_port;
  // The data path: one chunk from packet to ZeroMQ message.
  make_edge(output_port<kClosedChunks>(binner), tokenizer);
  make_edge(output_port<0>(tokenizer), decoder);
  make_edge(decoder, publisher);  // from the decoder thread, through the node's gateway
  // Taps, in the order they run; each after its sender handed the data on.
  if (p.recorder) make_edge(output_port<kBinnedInput>(binner), record_packets);
  if (p.options.on_batch) make_edge(output_port<kBinnedInput>(binner), on_batch);
  if (p.recorder) make_edge(output_port<kPublished>(publisher), record_predictions);
  if (p.options.on_prediction) make_edge(output_port<kPublished>(publisher), on_prediction);
  make_edge(output_port<kPublished>(publisher), metrics);
}

LivePipeline::LivePipeline(const PipelineConfig& config,
                           std::unique_ptr<models::StreamingDecoder> decoder, LiveOptions options) {
  if (!decoder) throw std::invalid_argument("live pipeline: no decoder");
  // The realtime knobs' last guard (preflight reports them all): before any thread or socket,
  // since libzmq aborts when it cannot apply its thread options.
  if (const auto errors = check_realtime(config.realtime); !errors.empty())
    throw RealtimeError(errors.front());
  if (config.realtime.mlockall) lock_process_memory(MCL_CURRENT | MCL_FUTURE);
  impl_ = std::make_unique<Impl>(config, std::move(decoder), std::move(options));
}

void LivePipeline::push(core::EventBatch batch) {
  impl_->batches_pushed.fetch_add(1);
  impl_->g->binner.try_put(BinnerInput(std::move(batch)));
}

void LivePipeline::tick(int64_t host_ns) { impl_->g->binner.try_put(BinnerInput(Tick{host_ns})); }

void LivePipeline::wait_in_flight_below(uint64_t max_in_flight) {
  std::unique_lock lock(impl_->flight_mutex);
  impl_->flight_cv.wait(lock, [&] {
    // Both the binner's input queue and the chunks behind it must be below the bound.
    return impl_->batches_pushed.load() < impl_->batches_binned.load() + max_in_flight &&
           impl_->chunks_closed.load() < impl_->chunks_published + max_in_flight;
  });
}

LivePipeline::~LivePipeline() {
  try {
    stop();
  } catch (const std::exception& e) {
    spdlog::error("pipeline shutdown: {}", e.what());
  }
}

void LivePipeline::start() {
  if (impl_->started) return;
  impl_->started = true;
  impl_->decoder_thread.start();  // its realtime settings first, on the thread; may throw
  if (impl_->ingest) impl_->ingest->start();
  if (impl_->config.chunking.deadline_enabled && !impl_->options.external_ticks) {
    // Its realtime settings first, on the thread itself; a failure fails start().
    std::promise<void> ready;
    auto started = ready.get_future();
    impl_->ticker = std::thread([this, ready = std::move(ready)]() mutable {
      try {
        apply_thread_role(impl_->config.realtime, ThreadRole::kTicker);
      } catch (...) {
        ready.set_exception(std::current_exception());
        return;
      }
      ready.set_value();
      impl_->run_ticker();
    });
    try {
      started.get();
    } catch (...) {
      impl_->ticker.join();
      throw;
    }
  }
}

void LivePipeline::stop() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  // 1. Stop ingest: no packet enters after this.
  if (impl_->ingest) impl_->ingest->stop();
  // 2. Stop the ticker.
  {
    std::lock_guard lock(impl_->tick_mutex);
    impl_->tick_stop = true;
  }
  impl_->tick_cv.notify_all();
  if (impl_->ticker.joinable()) impl_->ticker.join();
  // 3. End of stream: the binner closes what is open; 4. everything in flight drains.
  if (impl_->started) impl_->g->binner.try_put(BinnerInput(EndOfStream{core::host_now_ns()}));
  // No decoder thread (never started, or its start failed): what was pushed is decoded here,
  // before the wait below (which covers the decoder thread's work through the decoder node's
  // reserved waits), and what still comes on the caller's thread.
  if (!impl_->decoder_thread.running()) impl_->decoder_thread.stop();
  impl_->arena.execute([&] { impl_->g->graph.wait_for_all(); });
  impl_->decoder_thread.stop();
  {
    std::lock_guard lock(impl_->stats_mutex);
    if (impl_->ingest) impl_->stats.ingest = impl_->ingest->stats();
    if (impl_->decode.stats().decoder_errors != impl_->decoder_errors_logged)
      impl_->log_decoder_errors(/*force=*/true);
    if (const uint64_t left = impl_->inbox.waiting(); left > 0) {
      // Only exact replay can leave chunks behind: a recorded decode group that never completed.
      spdlog::warn("pipeline: {} chunk(s) left undecoded at shutdown (incomplete decode group)",
                   left);
    }
  }
  if (impl_->recorder) {
    impl_->recorder->stop();
    std::lock_guard lock(impl_->stats_mutex);
    impl_->stats.recorder = impl_->recorder->stats();
  }
  // 5. Close the socket, then the context (linger bounds the wait).
  impl_->publisher.reset();
  impl_->zmq_context.close();
}

uint16_t LivePipeline::ingest_port() const { return impl_->ingest ? impl_->ingest->port() : 0; }

std::string LivePipeline::publish_endpoint() const {
  if (!impl_->config.publish.enabled) return "none";
  return impl_->publisher ? impl_->publisher->endpoint() : impl_->config.publish.endpoint;
}

PipelineStats LivePipeline::stats() const {
  std::lock_guard lock(impl_->stats_mutex);
  return impl_->snapshot_locked();
}

bool LivePipeline::wait_for_subscribers(size_t n, std::chrono::milliseconds timeout) const {
  if (!impl_->config.publish.enabled)
    throw std::logic_error("wait_for_subscribers: publish.enabled is false, there is no publisher");
  return impl_->publisher && impl_->publisher->wait_for_subscribers(n, timeout);
}

}  // namespace spikeflow::pipeline
