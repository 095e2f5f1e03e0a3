#include "pipeline/stats_report.h"

#include <fmt/format.h>

#include <iterator>
#include <string_view>

namespace spikeflow::pipeline {

namespace {

/// `{"name":n,...}` of a per-reason counter array; names from the reason enum's to_string.
template <typename Reason, typename Array>
std::string reasons_json(const Array& counts) {
  std::string r = "{";
  for (size_t i = 0; i < counts.size(); ++i) {
    fmt::format_to(std::back_inserter(r), "{}\"{}\":{}", i ? "," : "",
                   stages::to_string(static_cast<Reason>(i)), counts[i]);
  }
  return r + "}";
}

/// ` name=n ...` of a per-reason counter array.
template <typename Reason, typename Array>
void reasons_text(std::string& r, const Array& counts) {
  for (size_t i = 0; i < counts.size(); ++i) {
    fmt::format_to(std::back_inserter(r), " {}={}", stages::to_string(static_cast<Reason>(i)),
                   counts[i]);
  }
}

std::string latency_json(const core::LatencyHistogram& h) {
  return fmt::format(R"({{"n":{},"p50_ns":{},"p90_ns":{},"p99_ns":{},"p999_ns":{},"max_ns":{}}})",
                     h.count(), h.percentile(0.5), h.percentile(0.9), h.percentile(0.99),
                     h.percentile(0.999), h.max());
}

std::string packet_drops_json(const stages::IngestStats& in) {
  std::string native = reasons_json<stages::PacketDrop>(in.packet_drops);
  std::string format = reasons_json<stages::FormatPacketDrop>(in.format_packet_drops);
  native.pop_back();  // merge the two objects: the reason names are distinct
  return fmt::format("{},\"duplicate\":{},\"refused_source\":{},{}", native, in.packets_duplicate,
                     in.refused_source, std::string_view(format).substr(1));
}

std::string event_drops_json(const stages::IngestStats& in) {
  std::string native = reasons_json<stages::EventDrop>(in.event_drops);
  const std::string format = reasons_json<stages::FormatEventDrop>(in.format_event_drops);
  native.pop_back();
  return fmt::format("{},{}", native, std::string_view(format).substr(1));
}

}  // namespace

std::string stats_json(const PipelineStats& s) {
  std::string r;
  auto it = std::back_inserter(r);
  const auto& in = s.ingest;
  fmt::format_to(
      it,
      R"({{"ingest":{{"packets":{},"events":{},"heartbeats":{},"packets_dropped":{},"events_dropped":{},)"
      R"("packets_lost":{},"packets_duplicate":{},"packets_reordered":{},"stream_restarts":{},)"
      R"("packets_skipped":{},"clock_wraps":{},"resync_bytes":{},"connections":{},"disconnects":{},"connect_failures":{},)"
      R"("refused_source":{},"refused_connections":{},"packet_drops":{},"event_drops":{}}},)",
      in.packets_accepted, in.events_accepted, in.heartbeats, in.packets_dropped(),
      in.events_dropped(), in.packets_lost, in.packets_duplicate, in.packets_reordered,
      in.stream_restarts, in.packets_skipped, in.clock_wraps, in.resync_bytes, in.connections,
      in.disconnects, in.connect_failures, in.refused_source, in.refused_connections,
      packet_drops_json(in), event_drops_json(in));
  const auto& b = s.binner;
  fmt::format_to(
      it,
      R"("binner":{{"events_in":{},"events":{},"late_events":{},"future_events":{},"stray_events":{},)"
      R"("stale_events":{},"stale_packets":{},"suspect_packets":{},"future_packet_times":{},)"
      R"("closed_by_watermark":{},"closed_by_deadline":{},"flushed":{},"no_source_chunks":{},)"
      R"("epoch":{},"resyncs":{},"clock_jumps_back":{},"clock_jumps_forward":{}}},)",
      b.events_in, b.events_binned, b.late_events, b.future_events, b.stray_events, b.stale_events,
      b.stale_packets, b.suspect_packets, b.future_packet_times, b.chunks_by_watermark,
      b.chunks_by_deadline, b.chunks_flushed, b.no_source_chunks, b.resyncs, b.resyncs,
      b.clock_jumps_back, b.clock_jumps_forward);
  fmt::format_to(it, R"("tokenizer":{{"tokens":{},"unknown_unit_events":{}}},)", s.tokenizer.tokens,
                 s.tokenizer.unknown_unit_events);
  const auto& q = s.inbox;
  fmt::format_to(
      it,
      R"("inbox":{{"admitted":{},"backlog_shed":{},"received":{},"decoded":{},"max_waiting":{}}},)",
      q.admitted, q.shed, q.received, q.decoded, q.max_waiting);
  const auto& d = s.decode;
  fmt::format_to(
      it,
      R"("decode":{{"chunks":{},"batched_calls":{},"max_batch":{},"repaired_outputs":{},)"
      R"("decoder_errors":{},"epoch_resets":{},"warmups":{},"warmups_skipped":{},"spins":{},)"
      R"("spin_caught":{}}},)",
      d.chunks, d.batched_calls, d.max_batch, d.repaired_outputs, d.decoder_errors, d.epoch_resets,
      d.warmups, d.warmups_skipped, s.decoder_spins, s.decoder_spin_caught);
  fmt::format_to(
      it,
      R"("publisher":{{"predictions":{},"sent":{},"send_failures":{},"out_of_order":{},"last_seq":{},)"
      R"("tap_errors":{},"stage_errors":{},"refused":{},"chunk_gaps":{},"epochs":{},)"
      R"("refused_clients":{}}},)",
      s.predictions, s.publish.sent, s.publish.send_failures, s.out_of_order, s.last_seq,
      s.tap_errors, s.stage_errors, s.guard.refused, s.guard.chunk_gaps, s.guard.epochs,
      s.publish.refused_clients);
  const auto& rec = s.recorder;
  fmt::format_to(
      it, R"("recorder":{{"packets":{},"predictions":{},"dropped":{},"io_errors":{},"bytes":{}}},)",
      rec.batches, rec.predictions, rec.dropped, rec.io_errors, rec.bytes);
  fmt::format_to(it, R"("latency":{{"close":{},"queue":{},"decode":{},"publish":{},"total":{}}}}})",
                 latency_json(s.close_latency), latency_json(s.queue_latency),
                 latency_json(s.decode_latency), latency_json(s.publish_latency),
                 latency_json(s.total_latency));
  return r;
}

std::string format_report(const PipelineStats& s) {
  std::string r;
  auto it = std::back_inserter(r);
  const auto& in = s.ingest;
  fmt::format_to(
      it,
      "ingest: packets={} events={} heartbeats={} lost={} duplicate={} reordered={} restarts={} "
      "skipped={} clock_wraps={} resync_bytes={} connections={} disconnects={} connect_failures={} "
      "refused_connections={}\n",
      in.packets_accepted, in.events_accepted, in.heartbeats, in.packets_lost, in.packets_duplicate,
      in.packets_reordered, in.stream_restarts, in.packets_skipped, in.clock_wraps, in.resync_bytes,
      in.connections, in.disconnects, in.connect_failures, in.refused_connections);
  fmt::format_to(it, "  dropped packets ({}):", in.packets_dropped());
  reasons_text<stages::PacketDrop>(r, in.packet_drops);
  fmt::format_to(it, " duplicate={} refused_source={}", in.packets_duplicate, in.refused_source);
  reasons_text<stages::FormatPacketDrop>(r, in.format_packet_drops);
  fmt::format_to(it, "\n  dropped events ({}):", in.events_dropped());
  reasons_text<stages::EventDrop>(r, in.event_drops);
  reasons_text<stages::FormatEventDrop>(r, in.format_event_drops);
  const auto& b = s.binner;
  fmt::format_to(
      it,
      "\nbinner: events={} late={} future={} stray={} stale={} future_packet_times={} "
      "closed_by_watermark={} closed_by_deadline={} flushed={} no_source={} epochs_started={} "
      "(back {} forward {})\n",
      b.events_binned, b.late_events, b.future_events, b.stray_events, b.stale_events,
      b.future_packet_times, b.chunks_by_watermark, b.chunks_by_deadline, b.chunks_flushed,
      b.no_source_chunks, b.resyncs, b.clock_jumps_back, b.clock_jumps_forward);
  fmt::format_to(it, "tokenizer: tokens={} unknown_unit_events={}\n", s.tokenizer.tokens,
                 s.tokenizer.unknown_unit_events);
  const auto& q = s.inbox;
  fmt::format_to(
      it, "decoder inbox: admitted={} backlog_shed={} received={} decoded={} max_waiting={}\n",
      q.admitted, q.shed, q.received, q.decoded, q.max_waiting);
  const auto& d = s.decode;
  fmt::format_to(
      it,
      "decoder: chunks={} batched_calls={} max_batch={} repaired_outputs={} decoder_errors={} "
      "warmups={} warmups_skipped={} spins={} spin_caught={}\n",
      d.chunks, d.batched_calls, d.max_batch, d.repaired_outputs, d.decoder_errors, d.warmups,
      d.warmups_skipped, s.decoder_spins, s.decoder_spin_caught);
  fmt::format_to(
      it,
      "publisher: predictions={} sent={} send_failures={} out_of_order={} refused={} chunk_gaps={} "
      "tap_errors={} stage_errors={} refused_clients={}\n",
      s.predictions, s.publish.sent, s.publish.send_failures, s.out_of_order, s.guard.refused,
      s.guard.chunk_gaps, s.tap_errors, s.stage_errors, s.publish.refused_clients);
  const auto& rec = s.recorder;
  if (rec.batches + rec.predictions + rec.dropped + rec.io_errors > 0) {
    fmt::format_to(it, "recorder: packets={} predictions={} dropped={} io_errors={} bytes={}\n",
                   rec.batches, rec.predictions, rec.dropped, rec.io_errors, rec.bytes);
  }
  fmt::format_to(it, "latency close   {}\n", s.close_latency.summary_us());
  fmt::format_to(it, "latency queue   {}\n", s.queue_latency.summary_us());
  fmt::format_to(it, "latency decode  {}\n", s.decode_latency.summary_us());
  fmt::format_to(it, "latency publish {}\n", s.publish_latency.summary_us());
  fmt::format_to(it, "latency total   {}\n", s.total_latency.summary_us());
  return r;
}

}  // namespace spikeflow::pipeline
