#include "pipeline/live_pipeline.h"

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <fmt/format.h>
#include <mutex>
#include <spdlog/spdlog.h>
#include <tbb/concurrent_queue.h>
#include <tbb/flow_graph.h>
#include <tbb/global_control.h>
#include <tbb/parallel_invoke.h>
#include <tbb/task_arena.h>
#include <thread>
#include <variant>

#include "core/chunk_flags.h"
#include "core/time.h"
#include "pipeline/ingest.h"

namespace spikeflow::pipeline {

namespace flow = tbb::flow;

namespace {

struct Tick {
  int64_t host_ns;
};
struct EndOfStream {
  int64_t host_ns;
};
using BinnerInput = std::variant<core::EventBatch, Tick, EndOfStream>;

using BinnerNode = flow::multifunction_node<BinnerInput, std::tuple<core::RawChunk>>;
/// What wakes the decoder node: a tokenized chunk waiting in `pending`, or (from the publisher,
/// once a prediction is out) the signal to do the decoder's state-only work for the next chunk.
struct DecoderWake {
  bool prepare = false;
};
using TokenizerNode = flow::function_node<core::RawChunk, DecoderWake>;
using DecoderNode = flow::multifunction_node<DecoderWake, std::tuple<core::Prediction>>;
using PublisherNode = flow::function_node<core::Prediction, flow::continue_msg>;

void record_span(core::LatencyHistogram& h, int64_t from, int64_t to) {
  if (from > 0 && to >= from) h.record(to - from);
}

}  // namespace

// ---- The graph: one node per stage, every stateful stage serial, data flowing one way. ----
//   ingest/ticker ─▶ binner ─▶ tokenizer ─▶ decoder ─▶ publisher
//                                             ▲             ╎ "prepare": a control signal only,
//                                             └╌╌╌╌╌╌╌╌╌╌╌╌╌╯ no data (see run_prepare)
struct LivePipeline::Graph {
  explicit Graph(LivePipeline::Impl& p);
  flow::graph graph;
  BinnerNode binner_node;
  TokenizerNode tokenizer_node;
  DecoderNode decoder_node;
  PublisherNode publisher_node;
};

struct LivePipeline::Impl {
  Impl(const PipelineConfig& cfg, std::unique_ptr<models::StreamingDecoder> dec, LiveOptions opts)
      : config(cfg),
        options(std::move(opts)),
        binner(cfg.chunking),
        tokenizer(core::UnitMap(dec->units())),
        decode(std::move(dec)),
        zmq_context(1),
        publisher(std::make_unique<ZmqPublisher>(zmq_context, cfg.publish)),
        // The graph's own workers, so every stage can run while another is busy: a slow decode
        // must not stop the binner closing chunks on time.
        parallelism(tbb::global_control::max_allowed_parallelism,
                    static_cast<size_t>(cfg.graph_threads) + 1),
        arena(cfg.graph_threads, /*reserved_for_masters=*/0) {
    const int64_t w = cfg.chunking.width_ns;
    if (decode.decoder().chunk_width_ns() != w) {
      throw std::runtime_error(fmt::format(
          "chunking.width_ms is {} ms but the decoder was trained on {} ms chunks", w / 1e6,
          decode.decoder().chunk_width_ns() / 1e6));
    }
    if (!cfg.record.path.empty()) {
      recorder = std::make_unique<Recorder>(cfg.record.path, to_yaml(cfg), decode.decoder().describe(),
                                            options.model_identity, decode.decoder().units(),
                                            static_cast<size_t>(cfg.record.queue_capacity));
    }
    // A flow graph runs its tasks in the arena it was built in. The decoder may split a batched
    // call over the arena's threads (the decoder node runs inside it, so this stays there).
    arena.execute([&] { g = std::make_unique<Graph>(*this); });
    decode.set_parallel_invoke([](const std::function<void()>& a, const std::function<void()>& b) {
      tbb::parallel_invoke(a, b);
    });
    if (cfg.ingest.transport != Transport::kNone) {
      ingest = make_ingest(cfg.ingest, [this](core::EventBatch& b) { g->binner_node.try_put(BinnerInput(b)); });
    }
  }

  // ---- Node bodies: each calls one plain stage and records what it did. ----
  void run_binner(const BinnerInput& in, BinnerNode::output_ports_type& out) {
    closed.clear();
    if (const auto* b = std::get_if<core::EventBatch>(&in)) {
      batches_binned.fetch_add(1);
      if (recorder) recorder->record(*b);
      if (options.on_batch) options.on_batch(*b);
      binner.push(*b, closed);
    } else if (const auto* t = std::get_if<Tick>(&in)) {
      binner.tick(t->host_ns, closed);
      if (recorder && !closed.empty()) {
        core::EventBatch marker;
        marker.arrival_host_ns = t->host_ns;
        marker.device_time_ns = kTickMarkerDeviceTime;
        recorder->record(marker);
      }
    } else {
      binner.flush(std::get<EndOfStream>(in).host_ns, closed);
    }
    const int64_t now = core::host_now_ns();
    {
      std::lock_guard lock(stats_mutex);
      stats.binner = binner.stats();
    }
    chunks_closed.fetch_add(closed.size());
    flight_cv.notify_all();  // a push() waiting for the binner's queue to shrink
    for (auto& c : closed) {
      c.timing.close_ns = now;
      std::get<0>(out).try_put(std::move(c));
    }
  }

  void run_tokenizer(const core::RawChunk& c) {
    core::TokenChunk t;
    tokenizer.tokenize(c, t);
    t.timing.tokenize_ns = core::host_now_ns();
    // Overflow policy at the decoder's input: past max_backlog waiting chunks, a chunk's tokens
    // are shed (it is still decoded, as empty, so it keeps its prediction and the recurrent state
    // its place in time), flagged and counted. Memory stays bounded whatever the decoder does.
    const uint64_t waiting = tokenized.fetch_add(1) - decoded.load();
    const bool shed = waiting >= static_cast<uint64_t>(config.decoder.max_backlog);
    if (shed) {
      t.clear_tokens();
      core::set_flag(t.flags, core::ChunkFlag::kBacklogShed);
      core::set_flag(t.flags, core::ChunkFlag::kEmpty);
    }
    {
      std::lock_guard lock(stats_mutex);
      stats.tokenizer = tokenizer.stats();
      if (shed) ++stats.backlog_shed;
    }
    pending.push(std::move(t));
  }

  void run_decoder(DecoderNode::output_ports_type& out) {
    core::TokenChunk c;
    while (pending.try_pop(c)) staged.push_back(std::move(c));
    if (staged.empty()) return;  // an earlier call already took this chunk
    size_t n = std::min(staged.size(), static_cast<size_t>(config.decoder.max_batch));
    if (options.decode_group_size) {
      n = std::max<size_t>(1, options.decode_group_size(staged.front().seq));
      if (staged.size() < n) return;  // the rest of the recorded group is still on its way
    }
    batch.assign(std::make_move_iterator(staged.begin()), std::make_move_iterator(staged.begin() + n));
    staged.erase(staged.begin(), staged.begin() + static_cast<std::ptrdiff_t>(n));
    if (const int64_t stall = stall_ns.exchange(0); stall > 0) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(stall));
    }
    predictions.clear();
    decode.decode(batch, predictions);
    decoded.fetch_add(batch.size());
    {
      std::lock_guard lock(stats_mutex);
      stats.decode = decode.stats();
    }
    for (auto& p : predictions) std::get<0>(out).try_put(p);
  }

  /// The decoder's state-only work for the next chunk (the fast path's W_hh h), signalled by the
  /// publisher after a prediction is out: off the critical path of both that prediction (run in
  /// the decoder node right after the decode, it delayed the publish by its ~60 µs: the other
  /// worker rarely wakes sooner) and the next chunk's. Idempotent; serial with decodes.
  void run_prepare() { decode.prepare_next(); }

  void run_publisher(core::Prediction& p) {
    publisher->publish(p);
    g->decoder_node.try_put(DecoderWake{/*prepare=*/true});  // control only, see run_prepare
    if (recorder) recorder->record(p);
    if (options.on_prediction) options.on_prediction(p);
    {
      std::lock_guard lock(flight_mutex);
      ++chunks_published;
    }
    flight_cv.notify_all();
    std::lock_guard lock(stats_mutex);
    ++stats.predictions;
    if (stats.last_seq >= 0 && p.seq != stats.last_seq + 1) ++stats.out_of_order;
    stats.last_seq = p.seq;
    stats.publish = publisher->stats();
    const auto& t = p.timing;
    record_span(stats.close_latency, t.trigger_arrival_ns, t.close_ns);
    record_span(stats.queue_latency, t.close_ns, t.decode_start_ns);
    record_span(stats.decode_latency, t.decode_start_ns, t.decode_end_ns);
    record_span(stats.publish_latency, t.decode_end_ns, t.publish_ns);
    record_span(stats.total_latency, t.trigger_arrival_ns, t.publish_ns);
    // Periodic counters and latency percentiles on the stats topic, from the socket's own thread.
    const int64_t interval = static_cast<int64_t>(config.metrics.print_interval_s * 1e9);
    if (interval > 0 && t.publish_ns - last_stats_ns >= interval) {
      last_stats_ns = t.publish_ns;
      stats.ingest = ingest ? ingest->stats() : stats.ingest;
      publisher->publish_text(config.publish.stats_topic, stats_json(stats));
    }
  }

  void run_ticker() {
    pthread_setname_np(pthread_self(), "sf-ticker");
    const auto period = std::chrono::nanoseconds(static_cast<int64_t>(config.tick_ms * 1e6));
    auto next = std::chrono::steady_clock::now() + period;
    std::unique_lock lock(tick_mutex);
    while (!tick_stop) {
      if (tick_cv.wait_until(lock, next, [this] { return tick_stop; })) break;
      g->binner_node.try_put(BinnerInput(Tick{core::host_now_ns()}));
      next += period;
      const auto now = std::chrono::steady_clock::now();
      if (next < now) next = now + period;  // after a stall, do not burst
    }
  }

  PipelineConfig config;
  LiveOptions options;
  stages::Binner binner;
  stages::Tokenizer tokenizer;
  stages::DecodeStage decode;
  zmq::context_t zmq_context;
  std::unique_ptr<ZmqPublisher> publisher;
  std::unique_ptr<Ingest> ingest;
  std::unique_ptr<Recorder> recorder;  // tap: its own thread, never blocks the graph

  tbb::global_control parallelism;
  tbb::task_arena arena;
  std::unique_ptr<Graph> g;

  // Hand-off between tokenizer and decoder: unbounded in type, bounded in practice by the
  // binner's rate (one chunk per width); catch-up drains up to max_batch per call.
  tbb::concurrent_queue<core::TokenChunk> pending;
  std::vector<core::RawChunk> closed;               // binner node scratch
  std::deque<core::TokenChunk> staged;              // decoder node: taken from pending, not decoded
  std::vector<core::TokenChunk> batch;              // decoder node scratch
  std::vector<core::Prediction> predictions;        // decoder node scratch
  std::atomic<int64_t> stall_ns{0};
  std::atomic<uint64_t> chunks_closed{0};
  std::atomic<uint64_t> batches_pushed{0};  // push() calls
  std::atomic<uint64_t> batches_binned{0};  // ... that the binner has taken
  std::atomic<uint64_t> tokenized{0};  // chunks handed to the decoder
  std::atomic<uint64_t> decoded{0};    // chunks it finished
  std::mutex flight_mutex;
  std::condition_variable flight_cv;
  uint64_t chunks_published = 0;  // guarded by flight_mutex

  std::thread ticker;
  std::mutex tick_mutex;
  std::condition_variable tick_cv;
  bool tick_stop = false;

  mutable std::mutex stats_mutex;
  PipelineStats stats;
  int64_t last_stats_ns = 0;  // publisher node
  bool started = false;
  bool stopped = false;
};

LivePipeline::Graph::Graph(LivePipeline::Impl& p)
    : binner_node(graph, flow::serial,
                  [&p](const BinnerInput& in, BinnerNode::output_ports_type& out) { p.run_binner(in, out); }),
      tokenizer_node(graph, flow::serial,
                     [&p](const core::RawChunk& c) {
                       p.run_tokenizer(c);
                       return DecoderWake{};
                     }),
      decoder_node(graph, flow::serial,
                   [&p](const DecoderWake& w, DecoderNode::output_ports_type& out) {
                     if (w.prepare) {
                       p.run_prepare();
                     } else {
                       p.run_decoder(out);
                     }
                   }),
      publisher_node(graph, flow::serial, [&p](core::Prediction pred) {
        p.run_publisher(pred);
        return flow::continue_msg();
      }) {
  flow::make_edge(flow::output_port<0>(binner_node), tokenizer_node);
  flow::make_edge(tokenizer_node, decoder_node);
  flow::make_edge(flow::output_port<0>(decoder_node), publisher_node);
}

LivePipeline::LivePipeline(const PipelineConfig& config,
                           std::unique_ptr<models::StreamingDecoder> decoder, LiveOptions options) {
  if (!decoder) throw std::invalid_argument("live pipeline: no decoder");
  impl_ = std::make_unique<Impl>(config, std::move(decoder), std::move(options));
}

void LivePipeline::push(core::EventBatch batch) {
  impl_->batches_pushed.fetch_add(1);
  impl_->g->binner_node.try_put(BinnerInput(std::move(batch)));
}

void LivePipeline::tick(int64_t host_ns) { impl_->g->binner_node.try_put(BinnerInput(Tick{host_ns})); }

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
  if (impl_->ingest) impl_->ingest->start();
  if (impl_->config.chunking.deadline_enabled && !impl_->options.external_ticks) {
    impl_->ticker = std::thread([this] { impl_->run_ticker(); });
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
  if (impl_->started) impl_->g->binner_node.try_put(BinnerInput(EndOfStream{core::host_now_ns()}));
  impl_->arena.execute([&] { impl_->g->graph.wait_for_all(); });
  {
    std::lock_guard lock(impl_->stats_mutex);
    if (impl_->ingest) impl_->stats.ingest = impl_->ingest->stats();
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
  return impl_->publisher ? impl_->publisher->endpoint() : impl_->config.publish.endpoint;
}

PipelineStats LivePipeline::stats() const {
  PipelineStats s;
  {
    std::lock_guard lock(impl_->stats_mutex);
    s = impl_->stats;
  }
  if (!impl_->stopped && impl_->ingest) s.ingest = impl_->ingest->stats();
  if (!impl_->stopped && impl_->recorder) s.recorder = impl_->recorder->stats();
  return s;
}

void LivePipeline::stall_decoder_once(int64_t ns) { impl_->stall_ns.store(ns); }

std::string stats_json(const PipelineStats& s) {
  auto lat = [](const core::LatencyHistogram& h) {
    return fmt::format(R"({{"n":{},"p50_ns":{},"p90_ns":{},"p99_ns":{},"p999_ns":{},"max_ns":{}}})", h.count(),
                       h.percentile(0.5), h.percentile(0.9), h.percentile(0.99), h.percentile(0.999), h.max());
  };
  return fmt::format(
      R"({{"packets":{},"events":{},"packets_dropped":{},"events_dropped":{},"packets_lost":{},)"
      R"("late_events":{},"future_events":{},"unknown_unit_events":{},"chunks":{},"predictions":{},)"
      R"("closed_by_deadline":{},"catch_up_calls":{},"repaired_outputs":{},"backlog_shed":{},"send_failures":{},"recorder_dropped":{},)"
      R"("latency":{{"close":{},"queue":{},"decode":{},"publish":{},"total":{}}}}})",
      s.ingest.packets_accepted, s.ingest.events_accepted, s.ingest.packets_dropped(), s.ingest.events_dropped(),
      s.ingest.packets_lost, s.binner.late_events, s.binner.future_events, s.tokenizer.unknown_unit_events,
      s.decode.chunks, s.predictions, s.binner.chunks_by_deadline, s.decode.batched_calls,
      s.decode.repaired_outputs, s.backlog_shed, s.publish.send_failures, s.recorder.dropped, lat(s.close_latency),
      lat(s.queue_latency), lat(s.decode_latency), lat(s.publish_latency), lat(s.total_latency));
}

std::string format_report(const PipelineStats& s) {
  std::string r;
  auto it = std::back_inserter(r);
  const auto& in = s.ingest;
  fmt::format_to(it,
                 "ingest: packets={} events={} heartbeats={} lost={} duplicate={} reordered={} restarts={} "
                 "skipped={} clock_wraps={} resync_bytes={} connections={} disconnects={}\n",
                 in.packets_accepted, in.events_accepted, in.heartbeats, in.packets_lost,
                 in.packets_duplicate, in.packets_reordered, in.stream_restarts, in.packets_skipped,
                 in.clock_wraps, in.resync_bytes, in.connections, in.disconnects);
  fmt::format_to(it, "  dropped packets:");
  for (size_t i = 0; i < in.packet_drops.size(); ++i) {
    fmt::format_to(it, " {}={}", stages::to_string(static_cast<stages::PacketDrop>(i)), in.packet_drops[i]);
  }
  for (size_t i = 0; i < in.format_packet_drops.size(); ++i) {
    fmt::format_to(it, " {}={}", stages::to_string(static_cast<stages::FormatPacketDrop>(i)), in.format_packet_drops[i]);
  }
  fmt::format_to(it, "\n  dropped events:");
  for (size_t i = 0; i < in.event_drops.size(); ++i) {
    fmt::format_to(it, " {}={}", stages::to_string(static_cast<stages::EventDrop>(i)), in.event_drops[i]);
  }
  for (size_t i = 0; i < in.format_event_drops.size(); ++i) {
    fmt::format_to(it, " {}={}", stages::to_string(static_cast<stages::FormatEventDrop>(i)), in.format_event_drops[i]);
  }
  const auto& b = s.binner;
  fmt::format_to(it,
                 "\nbinner: events={} late={} future={} future_packet_times={} closed_by_watermark={} "
                 "closed_by_deadline={} flushed={} resyncs={}\n",
                 b.events_binned, b.late_events, b.future_events, b.future_packet_times,
                 b.chunks_by_watermark, b.chunks_by_deadline, b.chunks_flushed, b.resyncs);
  fmt::format_to(it, "tokenizer: tokens={} unknown_unit_events={}\n", s.tokenizer.tokens,
                 s.tokenizer.unknown_unit_events);
  fmt::format_to(it, "decoder: chunks={} batched_calls={} max_batch={} repaired_outputs={} backlog_shed={}\n",
                 s.decode.chunks, s.decode.batched_calls, s.decode.max_batch, s.decode.repaired_outputs,
                 s.backlog_shed);
  fmt::format_to(it, "publisher: predictions={} sent={} send_failures={} out_of_order={}\n",
                 s.predictions, s.publish.sent, s.publish.send_failures, s.out_of_order);
  if (s.recorder.batches + s.recorder.predictions + s.recorder.dropped > 0) {
    fmt::format_to(it, "recorder: packets={} predictions={} dropped={} io_errors={} bytes={}\n", s.recorder.batches,
                   s.recorder.predictions, s.recorder.dropped, s.recorder.io_errors, s.recorder.bytes);
  }
  fmt::format_to(it, "latency close   {}\n", s.close_latency.summary_us());
  fmt::format_to(it, "latency queue   {}\n", s.queue_latency.summary_us());
  fmt::format_to(it, "latency decode  {}\n", s.decode_latency.summary_us());
  fmt::format_to(it, "latency publish {}\n", s.publish_latency.summary_us());
  fmt::format_to(it, "latency total   {}\n", s.total_latency.summary_us());
  return r;
}

}  // namespace spikeflow::pipeline
