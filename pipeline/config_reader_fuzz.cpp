// libFuzzer target: YAML text into parse_pipeline_config (pipeline/pipeline_config.h), which
// reads every key through ConfigReader (pipeline/config_reader.h). The two .cpp files are
// compiled straight into the target (the pipeline library links TBB, ZeroMQ and, through
// stages, LibTorch).
// Invariants: bad input is a ConfigError, nothing else, with at least one problem; an accepted
// config is within its declared ranges and survives to_yaml -> parse unchanged (recordings
// rely on that to replay what ran live).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "pipeline/pipeline_config.h"
#include "tests/fuzz/fuzz_support.h"

using namespace spikeflow;

namespace {

bool same(const pipeline::PipelineConfig& a, const pipeline::PipelineConfig& b) {
  const auto& x = a.ingest;
  const auto& y = b.ingest;
  return x.format == y.format && x.transport == y.transport && x.address == y.address &&
         x.port == y.port && x.receive_buffer_bytes == y.receive_buffer_bytes &&
         x.sample_rate_hz == y.sample_rate_hz && x.blackrock_protocol == y.blackrock_protocol &&
         x.blackrock_time_units == y.blackrock_time_units && x.connect == y.connect &&
         x.allow == y.allow && x.intan_blocks_per_write == y.intan_blocks_per_write &&
         x.blackrock_fe_channels == y.blackrock_fe_channels &&
         a.chunking.width_ns == b.chunking.width_ns &&
         a.chunking.lateness_ns == b.chunking.lateness_ns &&
         a.chunking.deadline_grace_ns == b.chunking.deadline_grace_ns &&
         a.chunking.max_future_ns == b.chunking.max_future_ns &&
         a.chunking.deadline_enabled == b.chunking.deadline_enabled &&
         a.chunking.adaptive_grace == b.chunking.adaptive_grace &&
         a.chunking.max_grace_ns == b.chunking.max_grace_ns && a.tick_ms == b.tick_ms &&
         a.graph_threads == b.graph_threads && a.decoder.checkpoint == b.decoder.checkpoint &&
         a.decoder.device == b.decoder.device && a.decoder.path == b.decoder.path &&
         a.decoder.threads == b.decoder.threads && a.decoder.max_batch == b.decoder.max_batch &&
         a.decoder.max_backlog == b.decoder.max_backlog &&
         a.publish.endpoint == b.publish.endpoint && a.publish.topic == b.publish.topic &&
         a.publish.stats_topic == b.publish.stats_topic && a.publish.format == b.publish.format &&
         a.publish.send_high_water_mark == b.publish.send_high_water_mark &&
         a.publish.linger_ms == b.publish.linger_ms && a.record.path == b.record.path &&
         a.record.queue_capacity == b.record.queue_capacity &&
         a.metrics.print_interval_s == b.metrics.print_interval_s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  pipeline::PipelineConfig c;
  try {
    c = pipeline::parse_pipeline_config(text, "fuzz.yaml");
  } catch (const pipeline::ConfigError& e) {
    FUZZ_CHECK(!e.problems().empty());
    return 0;
  }
  FUZZ_CHECK(c.chunking.width_ns >= 1'000'000 && c.chunking.lateness_ns <= c.chunking.width_ns);
  FUZZ_CHECK(c.chunking.max_future_ns >= c.chunking.width_ns);
  FUZZ_CHECK(c.ingest.port >= 0 && c.ingest.port <= 65535);
  FUZZ_CHECK(!c.publish.topic.empty());
  const std::string yaml = pipeline::to_yaml(c);
  pipeline::PipelineConfig again;
  try {
    again = pipeline::parse_pipeline_config(yaml, "fuzz-roundtrip.yaml");
  } catch (const pipeline::ConfigError& e) {
    std::fprintf(stderr, "to_yaml output does not parse: %s\n%s\n", e.what(), yaml.c_str());
    FUZZ_CHECK(false);
  }
  if (!same(c, again)) {
    std::fprintf(stderr, "to_yaml round trip changed the config:\n--- first\n%s--- read back\n%s",
                 yaml.c_str(), pipeline::to_yaml(again).c_str());
    FUZZ_CHECK(false);
  }
  return 0;
}
