#include "pipeline/pipeline_config.h"

#include <fstream>
#include <sstream>

#include "core/time.h"

namespace spikeflow::pipeline {

namespace {

PipelineConfig read(ConfigReader& r) {
  PipelineConfig c;
  c.ingest.format = r.get_string("ingest.format", c.ingest.format, {"native", "blackrock", "intan"});
  c.ingest.transport = r.get_string("ingest.transport", c.ingest.transport, {"udp", "tcp", "none"});
  c.ingest.address = r.get_string("ingest.address", c.ingest.address);
  c.ingest.port = static_cast<int>(r.get_int("ingest.port", c.ingest.port, 0, 65535));
  c.ingest.receive_buffer_bytes = static_cast<int>(
      r.get_int("ingest.receive_buffer_bytes", c.ingest.receive_buffer_bytes, 4096, 1 << 30, "bytes"));
  c.ingest.sample_rate_hz = r.get_int("ingest.sample_rate_hz", c.ingest.sample_rate_hz, 1, 1'000'000'000, "Hz");
  c.ingest.blackrock_protocol =
      r.get_string("ingest.blackrock.protocol", c.ingest.blackrock_protocol, {"3.11", "4.0", "4.1"});
  c.ingest.blackrock_time_in_ticks = r.get_bool("ingest.blackrock.time_in_ticks", c.ingest.blackrock_time_in_ticks);
  c.ingest.blackrock_fe_channels = static_cast<int>(
      r.get_int("ingest.blackrock.fe_channels", c.ingest.blackrock_fe_channels, 1, 0x7FFF, "channels"));
  if (c.ingest.format == "blackrock" && c.ingest.transport == "tcp") {
    r.add_error("ingest.transport", "blackrock spike packets come over udp");
  }
  if (c.ingest.format == "intan" && c.ingest.transport == "udp") {
    r.add_error("ingest.transport", "the Intan RHX spike stream is tcp");
  }
  if (c.ingest.blackrock_protocol == "3.11" && c.ingest.blackrock_time_in_ticks) {
    r.add_error("ingest.blackrock.time_in_ticks", "applies to 4.x only (3.11 always counts ticks)");
  }

  const double width_ms = r.get_double("chunking.width_ms", 50.0, 1.0, 10000.0, "ms");
  const double lateness_ms = r.get_double("chunking.lateness_ms", 2.0, 0.0, 10000.0, "ms");
  const double grace_ms = r.get_double("chunking.deadline_grace_ms", 10.0, 0.0, 10000.0, "ms");
  const double future_ms = r.get_double("chunking.max_future_ms", 1000.0, 1.0, 60000.0, "ms");
  c.chunking.deadline_enabled = r.get_bool("chunking.deadline", true);
  c.chunking.width_ns = static_cast<int64_t>(width_ms * core::kNsPerMs);
  c.chunking.lateness_ns = static_cast<int64_t>(lateness_ms * core::kNsPerMs);
  c.chunking.deadline_grace_ns = static_cast<int64_t>(grace_ms * core::kNsPerMs);
  c.chunking.max_future_ns = static_cast<int64_t>(future_ms * core::kNsPerMs);
  if (lateness_ms > width_ms) r.add_error("chunking.lateness_ms", "must not exceed chunking.width_ms");
  if (future_ms < width_ms) r.add_error("chunking.max_future_ms", "must be at least chunking.width_ms");
  c.tick_ms = r.get_double("chunking.tick_ms", c.tick_ms, 0.1, 100.0, "ms");
  c.graph_threads = static_cast<int>(r.get_int("pipeline.graph_threads", c.graph_threads, 2, 64, "threads"));

  c.decoder.checkpoint = r.get_string("decoder.checkpoint", "");
  c.decoder.device = r.get_string("decoder.device", c.decoder.device, {"cpu", "cuda"});
  c.decoder.threads = static_cast<int>(r.get_int("decoder.threads", c.decoder.threads, 1, 64));
  c.decoder.max_batch = static_cast<int>(r.get_int("decoder.max_batch", c.decoder.max_batch, 1, 4096, "chunks"));

  c.publish.endpoint = r.get_string("publish.endpoint", c.publish.endpoint);
  c.publish.topic = r.get_string("publish.topic", c.publish.topic);
  c.publish.format = r.get_string("publish.format", c.publish.format, {"binary", "json"});
  c.publish.send_high_water_mark = static_cast<int>(
      r.get_int("publish.send_high_water_mark", c.publish.send_high_water_mark, 1, 10'000'000, "messages"));
  c.publish.linger_ms = static_cast<int>(r.get_int("publish.linger_ms", c.publish.linger_ms, 0, 60000, "ms"));
  if (c.publish.endpoint.rfind("tcp://", 0) != 0 && c.publish.endpoint.rfind("ipc://", 0) != 0 &&
      c.publish.endpoint.rfind("inproc://", 0) != 0) {
    r.add_error("publish.endpoint", "must start with tcp://, ipc:// or inproc://");
  }
  if (c.publish.topic.empty()) r.add_error("publish.topic", "must not be empty");

  c.metrics.print_interval_s = r.get_double("metrics.print_interval_s", c.metrics.print_interval_s, 0.0, 3600.0, "s");
  return c;
}

}  // namespace

PipelineConfig parse_pipeline_config(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source, {std::string("YAML syntax error: ") + e.what()});
  }
  ConfigReader r(root, source);
  PipelineConfig c = read(r);
  r.finish();
  return c;
}

PipelineConfig load_pipeline_config(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError(path, {"cannot open the file"});
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_pipeline_config(ss.str(), path);
}

std::vector<ConfigKeyDoc> describe_pipeline_config() {
  ConfigReader r(YAML::Node(), "defaults");
  (void)read(r);
  return r.docs();
}

}  // namespace spikeflow::pipeline
