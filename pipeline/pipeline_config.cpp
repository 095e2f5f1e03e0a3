#include "pipeline/pipeline_config.h"

#include <cmath>
#include <fstream>
#include <sstream>

#include "core/file_check.h"
#include "pipeline/config_keys.h"
#include "stages/intan_spike_stream.h"

namespace spikeflow::pipeline {

namespace {

/// Rules that tie keys together; each key's own range is checked as it is read.
void check_rules(ConfigReader& r, const PipelineConfig& c) {
  if (auto why = format_transport_problem(c.ingest.format, c.ingest.transport)) {
    r.add_error("ingest.transport", std::string(*why));
  }
  if (c.ingest.blackrock_protocol == stages::BlackrockProtocol::kV3_11 &&
      c.ingest.blackrock_time_units == stages::BlackrockTimeUnits::kNs) {
    r.add_error("ingest.blackrock.time_units", "ns applies to 4.x only (3.11 always counts ticks)");
  }
  if (c.ingest.format == IngestFormat::kBlackrock &&
      c.ingest.sample_rate_hz != std::floor(c.ingest.sample_rate_hz)) {
    r.add_error("ingest.sample_rate_hz", "blackrock tick rates are whole Hz");
  }
  if (c.ingest.format == IngestFormat::kIntan) {
    stages::IntanOptions o;
    o.sample_rate_hz = c.ingest.sample_rate_hz;
    for (const auto& e : o.validate()) r.add_error("ingest.sample_rate_hz", e);
  }
  if (!c.ingest.connect.empty()) {
    if (c.ingest.transport != Transport::kTcp)
      r.add_error("ingest.connect", "needs ingest.transport tcp");
    const auto colon = c.ingest.connect.rfind(':');
    const std::string port = colon == std::string::npos ? "" : c.ingest.connect.substr(colon + 1);
    const bool digits = !port.empty() && port.size() <= 5 &&
                        port.find_first_not_of("0123456789") == std::string::npos;
    if (colon == 0 || !digits || std::stoi(port) < 1 || std::stoi(port) > 65535) {
      r.add_error(
          "ingest.connect",
          "'" + c.ingest.connect + "': expected host:port (port 1..65535), e.g. 127.0.0.1:5002");
    }
  }
  if (c.ingest.busy_poll_us > 0 && c.ingest.transport != Transport::kUdp)
    r.add_error("ingest.busy_poll_us", "only udp ingest busy-polls (set it to 0)");
  const auto& ch = c.chunking;
  if (ch.max_grace_ns < ch.deadline_grace_ns) {
    r.add_error("chunking.max_grace_ms", "must be at least chunking.deadline_grace_ms");
  }
  if (ch.lateness_ns > ch.width_ns)
    r.add_error("chunking.lateness_ms", "must not exceed chunking.width_ms");
  if (ch.max_future_ns < ch.width_ns)
    r.add_error("chunking.max_future_ms", "must be at least chunking.width_ms");
  const auto& p = c.publish;
  if (p.enabled && p.endpoint.rfind("tcp://", 0) != 0 && p.endpoint.rfind("ipc://", 0) != 0 &&
      p.endpoint.rfind("inproc://", 0) != 0) {
    r.add_error("publish.endpoint", "must start with tcp://, ipc:// or inproc://");
  }
  if (p.topic.empty()) r.add_error("publish.topic", "must not be empty");
  if (p.stats_topic.empty() || p.stats_topic.rfind(p.topic, 0) == 0) {
    r.add_error("publish.stats_topic",
                "must be non-empty and must not start with publish.topic "
                "(ZeroMQ subscriptions match by prefix)");
  }
}

}  // namespace

models::RuntimeOptions runtime_options(const DecoderConfig& decoder) {
  models::RuntimeOptions rt;
  rt.device = std::string(to_string(decoder.device));
  rt.threads = decoder.threads;
  rt.path = std::string(to_string(decoder.path));
  return rt;
}

PipelineConfig parse_pipeline_config(const std::string& yaml_text, const std::string& source,
                                     const std::filesystem::path& base_dir) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError(source, {std::string("YAML syntax error: ") + e.what()});
  }
  ConfigReader r(root, source);
  PipelineConfig c;
  for (const auto& key : pipeline_config_keys()) key.read(r, c);
  check_rules(r, c);
  r.finish();
  if (!base_dir.empty()) {
    for (const auto& key : pipeline_config_keys()) {
      if (!key.path) continue;
      std::string& p = key.path(c);
      if (!p.empty() && std::filesystem::path(p).is_relative())
        p = (base_dir / p).lexically_normal().string();
    }
  }
  return c;
}

PipelineConfig load_pipeline_config(const std::string& path) {
  // The shared input-file check (core/file_check.h); a config problem stays a ConfigError.
  if (auto problem = core::input_file_problem(path, "config file"))
    throw ConfigError(path, {*problem});
  std::ifstream in(path);
  if (!in) throw ConfigError(path, {"cannot open the file"});
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw ConfigError(path, {"cannot read the file"});
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) dir = ".";
  return parse_pipeline_config(ss.str(), path, dir);
}

std::string to_yaml(const PipelineConfig& c) {
  YAML::Node root(YAML::NodeType::Map);  // a real node, so that the copies below alias it
  for (const auto& key : pipeline_config_keys()) {
    // "a.b.c" -> root[a][b][c]; yaml-cpp keeps insertion order, so the file follows the table.
    std::vector<std::string> parts;
    std::stringstream ss(key.name);
    for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
    std::vector<YAML::Node> path{root};
    for (size_t i = 0; i + 1 < parts.size(); ++i) path.push_back(path.back()[parts[i]]);
    path.back()[parts.back()] = key.text(c);
  }
  YAML::Emitter y;
  y << root;
  return std::string(y.c_str()) + "\n";
}

}  // namespace spikeflow::pipeline
