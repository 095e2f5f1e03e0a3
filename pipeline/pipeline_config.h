// PipelineConfig: everything `spikeflow run` needs, read from a YAML file in configs/.
// Every key has a type, unit, default and range (see `spikeflow run --describe-config` and
// README "Configuration"); unknown keys are errors; all problems are reported at once.
#pragma once

#include <string>
#include <vector>

#include "pipeline/config_reader.h"
#include "stages/binner.h"

namespace spikeflow::pipeline {

struct IngestConfig {
  std::string format = "native";       ///< native | blackrock (udp) | intan (tcp)
  std::string transport = "udp";       ///< udp | tcp | none (in-process input: replay)
  std::string address = "127.0.0.1";   ///< bind address; loopback unless configured otherwise
  int port = 47000;                    ///< 0 = ephemeral (the bound port is logged)
  int receive_buffer_bytes = 8 << 20;  ///< SO_RCVBUF request
  int64_t sample_rate_hz = 30000;      ///< device clock of Blackrock 3.x ticks / Intan samples, Hz
  std::string blackrock_protocol = "4.1";  ///< 3.11 | 4.0 | 4.1 (CereLink cbproto.h)
  bool blackrock_time_in_ticks = false;    ///< 4.x legacy NSP: time counts ticks, not ns
  int blackrock_fe_channels = 256;         ///< chids 1..this are front-end (spike) channels
};

struct DecoderConfig {
  std::string checkpoint;              ///< required: a file written by `spikeflow train`
  std::string device = "cpu";          ///< cpu | cuda
  std::string path = "auto";           ///< auto | fast | torch (models/streaming_decoder.h)
  int threads = 1;                     ///< intra-op threads for inference
  int max_batch = 64;                  ///< most pending chunks decoded in one catch-up call
  int max_backlog = 2000;              ///< waiting chunks (100 s at 50 ms) before tokens are shed
};

struct PublishConfig {
  std::string endpoint = "tcp://127.0.0.1:47001";
  std::string topic = "pred";
  std::string stats_topic = "stats";   ///< counters + latency JSON every metrics.print_interval_s
  std::string format = "binary";       ///< binary | json
  int send_high_water_mark = 10000;    ///< messages queued per subscriber before ZMQ drops
  int linger_ms = 200;
};

struct RecordConfig {
  std::string path;                    ///< recording file (replay/recording_file.h); empty = off
  int queue_capacity = 65536;          ///< items buffered for the recorder thread before drops
};

struct MetricsConfig {
  double print_interval_s = 1.0;       ///< 0 = no periodic line
};

struct PipelineConfig {
  IngestConfig ingest;
  stages::BinnerOptions chunking;
  double tick_ms = 1.0;                ///< how often chunk deadlines are checked
  int graph_threads = 2;               ///< TBB workers running the graph's stages
  DecoderConfig decoder;
  PublishConfig publish;
  MetricsConfig metrics;
  RecordConfig record;
};

/// Parses YAML text; source names it in errors. Throws ConfigError listing every problem.
PipelineConfig parse_pipeline_config(const std::string& yaml_text, const std::string& source);

/// Reads and parses a file. A missing/unreadable file or YAML syntax error is a ConfigError
/// naming the file.
PipelineConfig load_pipeline_config(const std::string& path);

/// The effective config as YAML that parse_pipeline_config reads back to the same values
/// (recordings keep it, so a replay runs exactly what ran live).
std::string to_yaml(const PipelineConfig& config);

/// Every key the pipeline config accepts, with type, unit, default and range.
std::vector<ConfigKeyDoc> describe_pipeline_config();

}  // namespace spikeflow::pipeline
