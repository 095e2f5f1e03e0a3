// PipelineConfig: everything `spikeflow run` needs, read from a YAML file in configs/.
// Every key has a type, unit, default and range, declared once in pipeline/config_keys.h (which
// drives reading, to_yaml and `spikeflow run --describe-config`); defaults are the member
// initialisers below, taken from the stages' Options structs where a stage owns the value.
// Unknown and duplicate keys are errors; all problems are reported at once.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "models/streaming_decoder.h"
#include "pipeline/config_enums.h"
#include "pipeline/config_reader.h"
#include "stages/binner.h"
#include "stages/blackrock_packet_decoder.h"

namespace spikeflow::pipeline {

struct IngestConfig {
  IngestFormat format = IngestFormat::kNative;
  Transport transport = Transport::kUdp;  ///< kNone: in-process input (replay, tests)
  std::string address = "127.0.0.1";      ///< bind address; loopback unless configured otherwise
  int port = 47000;                       ///< 0 = ephemeral (the bound port is logged)
  /// tcp only: "host:port" of a server to connect to (Intan RHX serves its spike stream on port
  /// 5002) instead of listening on address:port; reconnects with backoff. Empty = listen.
  std::string connect;
  int receive_buffer_bytes = 8 << 20;  ///< SO_RCVBUF request
  /// Sources that may send (CIDRs, pipeline/cidr_set.h). Empty: loopback only (127.0.0.0/8,
  /// ::1); preflight refuses an empty list when address is not loopback.
  std::vector<std::string> allow;
  /// Device clock of Blackrock 3.x ticks / Intan samples, Hz (Intan accepts 10000/3).
  double sample_rate_hz = static_cast<double>(stages::BlackrockOptions{}.sample_rate_hz);
  stages::BlackrockProtocol blackrock_protocol =
      stages::BlackrockOptions{}.protocol;  ///< CereLink types.h
  /// 4.x: what the time field counts (auto: as CereLink decides, from PROCREP / SYSREP).
  stages::BlackrockTimeUnits blackrock_time_units = stages::BlackrockOptions{}.time_units;
  /// chids 1..this are front-end (spike) channels.
  int blackrock_fe_channels = static_cast<int>(stages::BlackrockOptions{}.fe_channel_count);
  /// Intan RHX TCPNumberDataBlocksPerWrite (128 frames each): sets the default chunking grace.
  int intan_blocks_per_write = 10;
  /// udp only: after each datagram the ingest thread keeps polling the socket without blocking
  /// for this long before it goes back to a blocking wait (0 = off). Bounded (<= 1000 us, at
  /// most kBusyPollBatch datagrams per wake-up) so it never starves the rest of the io loop.
  int busy_poll_us = 0;
};

struct DecoderConfig {
  std::string checkpoint;  ///< required: a file written by `spikeflow train`
  DecoderDevice device = DecoderDevice::kCpu;
  DecoderPath path = DecoderPath::kAuto;           ///< models/streaming_decoder.h
  int threads = models::RuntimeOptions{}.threads;  ///< intra-op threads for inference
  int max_batch = 64;      ///< most pending chunks decoded in one catch-up call
  int max_backlog = 2000;  ///< waiting chunks (100 s at 50 ms) before tokens are shed
  /// The decoder thread warms the decoder (StreamingDecoder::warm) this long before the next
  /// chunk is due (last close + chunk width; at most half a width); 0 = off. Skipped while a
  /// chunk is pending.
  int warmup_margin_us = 1000;
  /// After the warm-up (so only with warmup_margin_us > 0) the decoder thread polls for the chunk
  /// instead of sleeping, until this long past its expected close (0 = off; costs a core for
  /// margin + spin per chunk).
  int spin_us = 0;
};

struct PublishConfig {
  bool enabled = true;  ///< false: no ZeroMQ socket (embedded use: callbacks only)
  std::string endpoint = "tcp://127.0.0.1:47001";
  std::string topic = "pred";
  std::string stats_topic = "stats";  ///< counters + latency JSON every metrics.print_interval_s
  PublishFormat format = PublishFormat::kBinary;
  int send_high_water_mark = 10000;  ///< messages queued per subscriber before ZMQ drops
  int linger_ms = 200;
  /// A tcp:// endpoint on a non-loopback interface (*, 0.0.0.0, a LAN address) needs this.
  bool allow_remote = false;
  /// CURVE server secret key (z85 text, `spikeflow keygen`); empty = no encryption.
  std::string curve_secret_key_file;
  /// The matching public key file; optional, checked against the secret key when given.
  std::string curve_public_key_file;
  /// Folder of authorised client public keys (one z85 key per *.key file); empty = any client
  /// that knows the server's public key may subscribe. Needs curve_secret_key_file.
  std::string curve_clients_dir;
  /// ZMQ_IMMEDIATE: queue messages only to completed connections.
  bool immediate = false;
};

struct RecordConfig {
  std::string path;            ///< recording file (replay/recording_file.h); empty = off
  int queue_capacity = 65536;  ///< items buffered for the recorder thread before drops
};

/// Real-time knobs (pipeline/realtime.h, README "Real-time tuning"); all off by default. CPU
/// lists are "0-1,3"; empty = leave the thread where the scheduler puts it.
struct RealtimeConfig {
  std::string affinity_ingest;  ///< the ingest (Boost.Asio) thread
  std::string affinity_ticker;  ///< the deadline ticker thread
  std::string affinity_decoder;  ///< the decoder thread (pipeline/decoder_thread.h)
  std::string affinity_graph;   ///< the TBB workers of the graph's arena
  std::string affinity_zmq_io;  ///< ZeroMQ's I/O threads (ZMQ_THREAD_AFFINITY_CPU_ADD)
  /// SCHED_FIFO priority of ingest, ticker, decoder, graph workers and ZeroMQ I/O threads; 0 =
  /// off.
  int sched_fifo_priority = 0;
  bool mlockall = false;  ///< mlockall(MCL_CURRENT | MCL_FUTURE) before any thread starts
};

struct MetricsConfig {
  double print_interval_s = 1.0;  ///< 0 = no periodic line
};

struct PipelineConfig {
  IngestConfig ingest;
  stages::BinnerOptions chunking;
  double tick_ms = 1.0;   ///< how often chunk deadlines are checked
  int graph_threads = 2;  ///< TBB workers: stage work queued behind a busy stage
  DecoderConfig decoder;
  PublishConfig publish;
  MetricsConfig metrics;
  RecordConfig record;
  RealtimeConfig realtime;
};

/// The models:: runtime options a config asks for (device and path as models spells them).
models::RuntimeOptions runtime_options(const DecoderConfig& decoder);

/// Parses YAML text; source names it in errors. Throws ConfigError listing every problem
/// (out-of-range values, unknown and duplicate keys, cross-key rules). Relative paths
/// (decoder.checkpoint, record.path) resolve against base_dir when it is not empty.
PipelineConfig parse_pipeline_config(const std::string& yaml_text, const std::string& source,
                                     const std::filesystem::path& base_dir = {});

/// Reads and parses a file; relative paths inside it resolve against the file's folder, not the
/// working directory. A missing/unreadable file, a directory or a YAML syntax error is a
/// ConfigError naming the file.
PipelineConfig load_pipeline_config(const std::string& path);

/// The effective config as YAML that parse_pipeline_config reads back to the same values
/// (recordings keep it, so a replay runs exactly what ran live).
std::string to_yaml(const PipelineConfig& config);

}  // namespace spikeflow::pipeline
