// stats_json / format_report: every counter of every stage is exported. Each counter gets a
// distinct value, and the JSON (read back with yaml-cpp, a JSON superset) and the text report
// must carry it under its stage.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <string>

#include "pipeline/stats_report.h"

namespace spikeflow::pipeline {
namespace {

PipelineStats distinct_stats() {
  PipelineStats s;
  uint64_t v = 100;
  auto& in = s.ingest;
  for (auto* c : {&in.packets_accepted, &in.events_accepted, &in.heartbeats, &in.packets_lost,
                  &in.packets_duplicate, &in.packets_reordered, &in.stream_restarts,
                  &in.packets_skipped, &in.clock_wraps, &in.resync_bytes, &in.connections,
                  &in.disconnects, &in.refused_source, &in.refused_connections}) {
    *c = ++v;
  }
  for (auto& c : in.packet_drops) c = ++v;
  for (auto& c : in.event_drops) c = ++v;
  for (auto& c : in.format_packet_drops) c = ++v;
  for (auto& c : in.format_event_drops) c = ++v;
  auto& b = s.binner;
  for (auto* c : {&b.events_binned, &b.late_events, &b.future_events, &b.future_packet_times,
                  &b.chunks_by_watermark, &b.chunks_by_deadline, &b.chunks_flushed, &b.resyncs}) {
    *c = ++v;
  }
  s.tokenizer.tokens = ++v;
  s.tokenizer.unknown_unit_events = ++v;
  s.inbox = {.admitted = ++v, .shed = ++v, .received = ++v, .decoded = ++v, .max_waiting = ++v};
  s.backlog_shed = s.inbox.shed;
  s.decode = {.chunks = ++v,
              .batched_calls = ++v,
              .max_batch = ++v,
              .repaired_outputs = ++v,
              .decoder_errors = ++v};
  s.publish = {.sent = ++v, .send_failures = ++v, .refused_clients = ++v};
  s.recorder = {.batches = ++v, .predictions = ++v, .dropped = ++v, .io_errors = ++v, .bytes = ++v};
  s.predictions = ++v;
  s.out_of_order = ++v;
  s.last_seq = static_cast<int64_t>(++v);
  s.tap_errors = ++v;
  for (int64_t ns : {1000, 2000, 3000}) s.total_latency.record(ns);
  return s;
}

uint64_t u(const YAML::Node& n) { return n.as<uint64_t>(); }

TEST(StatsReportTest, json_carries_every_counter_of_every_stage) {
  const PipelineStats s = distinct_stats();
  const std::string json = stats_json(s);
  ASSERT_EQ(json.find('\n'), std::string::npos) << "one line";
  const YAML::Node j = YAML::Load(json);

  const auto& in = s.ingest;
  const auto ji = j["ingest"];
  EXPECT_EQ(u(ji["packets"]), in.packets_accepted);
  EXPECT_EQ(u(ji["events"]), in.events_accepted);
  EXPECT_EQ(u(ji["heartbeats"]), in.heartbeats);
  EXPECT_EQ(u(ji["packets_dropped"]), in.packets_dropped());
  EXPECT_EQ(u(ji["events_dropped"]), in.events_dropped());
  EXPECT_EQ(u(ji["packets_lost"]), in.packets_lost);
  EXPECT_EQ(u(ji["packets_duplicate"]), in.packets_duplicate);
  EXPECT_EQ(u(ji["packets_reordered"]), in.packets_reordered);
  EXPECT_EQ(u(ji["stream_restarts"]), in.stream_restarts);
  EXPECT_EQ(u(ji["packets_skipped"]), in.packets_skipped);
  EXPECT_EQ(u(ji["clock_wraps"]), in.clock_wraps);
  EXPECT_EQ(u(ji["resync_bytes"]), in.resync_bytes);
  EXPECT_EQ(u(ji["connections"]), in.connections);
  EXPECT_EQ(u(ji["disconnects"]), in.disconnects);
  EXPECT_EQ(u(ji["refused_source"]), in.refused_source);
  EXPECT_EQ(u(ji["refused_connections"]), in.refused_connections);
  EXPECT_EQ(u(ji["packet_drops"]["refused_source"]), in.refused_source);
  uint64_t packet_drops = 0, event_drops = 0;
  for (const auto& kv : ji["packet_drops"]) packet_drops += u(kv.second);
  for (const auto& kv : ji["event_drops"]) event_drops += u(kv.second);
  EXPECT_EQ(packet_drops, in.packets_dropped()) << "every reason, once";
  EXPECT_EQ(event_drops, in.events_dropped());
  EXPECT_EQ(u(ji["packet_drops"]["bad_magic"]),
            in.packet_drops[static_cast<size_t>(stages::PacketDrop::kBadMagic)]);
  EXPECT_EQ(u(ji["event_drops"]["noise"]),
            in.format_event_drops[static_cast<size_t>(stages::FormatEventDrop::kNoise)]);

  const auto jb = j["binner"];
  EXPECT_EQ(u(jb["events"]), s.binner.events_binned);
  EXPECT_EQ(u(jb["late_events"]), s.binner.late_events);
  EXPECT_EQ(u(jb["future_events"]), s.binner.future_events);
  EXPECT_EQ(u(jb["future_packet_times"]), s.binner.future_packet_times);
  EXPECT_EQ(u(jb["closed_by_watermark"]), s.binner.chunks_by_watermark);
  EXPECT_EQ(u(jb["closed_by_deadline"]), s.binner.chunks_by_deadline);
  EXPECT_EQ(u(jb["flushed"]), s.binner.chunks_flushed);
  EXPECT_EQ(u(jb["resyncs"]), s.binner.resyncs);

  EXPECT_EQ(u(j["tokenizer"]["tokens"]), s.tokenizer.tokens);
  EXPECT_EQ(u(j["tokenizer"]["unknown_unit_events"]), s.tokenizer.unknown_unit_events);

  const auto jq = j["inbox"];
  EXPECT_EQ(u(jq["admitted"]), s.inbox.admitted);
  EXPECT_EQ(u(jq["backlog_shed"]), s.inbox.shed);
  EXPECT_EQ(u(jq["received"]), s.inbox.received);
  EXPECT_EQ(u(jq["decoded"]), s.inbox.decoded);
  EXPECT_EQ(u(jq["max_waiting"]), s.inbox.max_waiting);

  const auto jd = j["decode"];
  EXPECT_EQ(u(jd["chunks"]), s.decode.chunks);
  EXPECT_EQ(u(jd["batched_calls"]), s.decode.batched_calls);
  EXPECT_EQ(u(jd["max_batch"]), s.decode.max_batch);
  EXPECT_EQ(u(jd["repaired_outputs"]), s.decode.repaired_outputs);
  EXPECT_EQ(u(jd["decoder_errors"]), s.decode.decoder_errors);

  const auto jp = j["publisher"];
  EXPECT_EQ(u(jp["predictions"]), s.predictions);
  EXPECT_EQ(u(jp["sent"]), s.publish.sent);
  EXPECT_EQ(u(jp["send_failures"]), s.publish.send_failures);
  EXPECT_EQ(u(jp["out_of_order"]), s.out_of_order);
  EXPECT_EQ(jp["last_seq"].as<int64_t>(), s.last_seq);
  EXPECT_EQ(u(jp["tap_errors"]), s.tap_errors);
  EXPECT_EQ(u(jp["refused_clients"]), s.publish.refused_clients);

  const auto jr = j["recorder"];
  EXPECT_EQ(u(jr["packets"]), s.recorder.batches);
  EXPECT_EQ(u(jr["predictions"]), s.recorder.predictions);
  EXPECT_EQ(u(jr["dropped"]), s.recorder.dropped);
  EXPECT_EQ(u(jr["io_errors"]), s.recorder.io_errors);
  EXPECT_EQ(u(jr["bytes"]), s.recorder.bytes);

  for (const char* span : {"close", "queue", "decode", "publish", "total"}) {
    ASSERT_TRUE(j["latency"][span].IsMap()) << span;
  }
  EXPECT_EQ(u(j["latency"]["total"]["n"]), 3u);
  EXPECT_EQ(u(j["latency"]["close"]["n"]), 0u);
}

TEST(StatsReportTest, text_report_names_every_stage_and_the_counters_a_reader_looks_for) {
  const PipelineStats s = distinct_stats();
  const std::string r = format_report(s);
  for (const std::string want : {"ingest:", "binner:", "tokenizer:", "decoder inbox:", "decoder:",
                                 "publisher:", "recorder:", "latency total"}) {
    EXPECT_NE(r.find(want), std::string::npos) << want << "\n" << r;
  }
  EXPECT_NE(r.find("decoder_errors=" + std::to_string(s.decode.decoder_errors)), std::string::npos)
      << r;
  EXPECT_NE(r.find("backlog_shed=" + std::to_string(s.inbox.shed)), std::string::npos) << r;
  EXPECT_NE(r.find("dropped=" + std::to_string(s.recorder.dropped)), std::string::npos) << r;
  EXPECT_NE(r.find("tap_errors=" + std::to_string(s.tap_errors)), std::string::npos) << r;
  EXPECT_NE(r.find("bad_magic=" + std::to_string(s.ingest.packet_drops[1])), std::string::npos)
      << r;
  EXPECT_NE(r.find("refused_source=" + std::to_string(s.ingest.refused_source)), std::string::npos)
      << r;
  EXPECT_NE(r.find("refused_connections=" + std::to_string(s.ingest.refused_connections)),
            std::string::npos)
      << r;
  EXPECT_NE(r.find("refused_clients=" + std::to_string(s.publish.refused_clients)),
            std::string::npos)
      << r;
}

}  // namespace
}  // namespace spikeflow::pipeline
