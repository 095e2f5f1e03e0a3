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
  c.chunking.adaptive_grace = r.get_bool("chunking.adaptive_grace", true);
  const double max_grace_ms = r.get_double("chunking.max_grace_ms", 25.0, 0.0, 10000.0, "ms");
  c.chunking.max_grace_ns = static_cast<int64_t>(max_grace_ms * core::kNsPerMs);
  if (max_grace_ms < grace_ms) r.add_error("chunking.max_grace_ms", "must be at least chunking.deadline_grace_ms");
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
  c.decoder.path = r.get_string("decoder.path", c.decoder.path, {"auto", "fast", "torch"});
  c.decoder.threads = static_cast<int>(r.get_int("decoder.threads", c.decoder.threads, 1, 64));
  c.decoder.max_batch = static_cast<int>(r.get_int("decoder.max_batch", c.decoder.max_batch, 1, 4096, "chunks"));
  c.decoder.max_backlog =
      static_cast<int>(r.get_int("decoder.max_backlog", c.decoder.max_backlog, 1, 1'000'000, "chunks"));

  c.publish.endpoint = r.get_string("publish.endpoint", c.publish.endpoint);
  c.publish.topic = r.get_string("publish.topic", c.publish.topic);
  c.publish.stats_topic = r.get_string("publish.stats_topic", c.publish.stats_topic);
  c.publish.format = r.get_string("publish.format", c.publish.format, {"binary", "json"});
  c.publish.send_high_water_mark = static_cast<int>(
      r.get_int("publish.send_high_water_mark", c.publish.send_high_water_mark, 1, 10'000'000, "messages"));
  c.publish.linger_ms = static_cast<int>(r.get_int("publish.linger_ms", c.publish.linger_ms, 0, 60000, "ms"));
  if (c.publish.endpoint.rfind("tcp://", 0) != 0 && c.publish.endpoint.rfind("ipc://", 0) != 0 &&
      c.publish.endpoint.rfind("inproc://", 0) != 0) {
    r.add_error("publish.endpoint", "must start with tcp://, ipc:// or inproc://");
  }
  if (c.publish.topic.empty()) r.add_error("publish.topic", "must not be empty");
  if (c.publish.stats_topic.empty() || c.publish.stats_topic.rfind(c.publish.topic, 0) == 0) {
    r.add_error("publish.stats_topic", "must be non-empty and must not start with publish.topic "
                                       "(ZeroMQ subscriptions match by prefix)");
  }

  c.record.path = r.get_string("record.path", c.record.path);
  c.record.queue_capacity = static_cast<int>(
      r.get_int("record.queue_capacity", c.record.queue_capacity, 16, 10'000'000, "items"));
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

std::string to_yaml(const PipelineConfig& c) {
  YAML::Emitter y;
  y << YAML::BeginMap;
  y << YAML::Key << "ingest" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "format" << YAML::Value << c.ingest.format;
  y << YAML::Key << "transport" << YAML::Value << c.ingest.transport;
  y << YAML::Key << "address" << YAML::Value << c.ingest.address;
  y << YAML::Key << "port" << YAML::Value << c.ingest.port;
  y << YAML::Key << "receive_buffer_bytes" << YAML::Value << c.ingest.receive_buffer_bytes;
  y << YAML::Key << "sample_rate_hz" << YAML::Value << c.ingest.sample_rate_hz;
  y << YAML::Key << "blackrock" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "protocol" << YAML::Value << YAML::DoubleQuoted << c.ingest.blackrock_protocol;
  y << YAML::Key << "time_in_ticks" << YAML::Value << c.ingest.blackrock_time_in_ticks;
  y << YAML::Key << "fe_channels" << YAML::Value << c.ingest.blackrock_fe_channels;
  y << YAML::EndMap << YAML::EndMap;
  y << YAML::Key << "chunking" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "width_ms" << YAML::Value << c.chunking.width_ns / 1e6;
  y << YAML::Key << "lateness_ms" << YAML::Value << c.chunking.lateness_ns / 1e6;
  y << YAML::Key << "deadline_grace_ms" << YAML::Value << c.chunking.deadline_grace_ns / 1e6;
  y << YAML::Key << "max_future_ms" << YAML::Value << c.chunking.max_future_ns / 1e6;
  y << YAML::Key << "deadline" << YAML::Value << c.chunking.deadline_enabled;
  y << YAML::Key << "adaptive_grace" << YAML::Value << c.chunking.adaptive_grace;
  y << YAML::Key << "max_grace_ms" << YAML::Value << c.chunking.max_grace_ns / 1e6;
  y << YAML::Key << "tick_ms" << YAML::Value << c.tick_ms;
  y << YAML::EndMap;
  y << YAML::Key << "pipeline" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "graph_threads" << YAML::Value << c.graph_threads << YAML::EndMap;
  y << YAML::Key << "decoder" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "checkpoint" << YAML::Value << c.decoder.checkpoint;
  y << YAML::Key << "device" << YAML::Value << c.decoder.device;
  y << YAML::Key << "path" << YAML::Value << c.decoder.path;
  y << YAML::Key << "threads" << YAML::Value << c.decoder.threads;
  y << YAML::Key << "max_batch" << YAML::Value << c.decoder.max_batch;
  y << YAML::Key << "max_backlog" << YAML::Value << c.decoder.max_backlog << YAML::EndMap;
  y << YAML::Key << "publish" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "endpoint" << YAML::Value << c.publish.endpoint;
  y << YAML::Key << "topic" << YAML::Value << c.publish.topic;
  y << YAML::Key << "stats_topic" << YAML::Value << c.publish.stats_topic;
  y << YAML::Key << "format" << YAML::Value << c.publish.format;
  y << YAML::Key << "send_high_water_mark" << YAML::Value << c.publish.send_high_water_mark;
  y << YAML::Key << "linger_ms" << YAML::Value << c.publish.linger_ms << YAML::EndMap;
  y << YAML::Key << "record" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "path" << YAML::Value << c.record.path;
  y << YAML::Key << "queue_capacity" << YAML::Value << c.record.queue_capacity << YAML::EndMap;
  y << YAML::Key << "metrics" << YAML::Value << YAML::BeginMap;
  y << YAML::Key << "print_interval_s" << YAML::Value << c.metrics.print_interval_s << YAML::EndMap;
  y << YAML::EndMap;
  return std::string(y.c_str()) + "\n";
}

std::vector<ConfigKeyDoc> describe_pipeline_config() {
  ConfigReader r(YAML::Node(), "defaults");
  (void)read(r);
  return r.docs();
}

}  // namespace spikeflow::pipeline
