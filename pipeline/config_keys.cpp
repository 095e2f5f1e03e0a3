#include "pipeline/config_keys.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <type_traits>

#include "core/time.h"
#include "pipeline/cidr_set.h"
#include "pipeline/cpu_list.h"
#include "stages/intan_spike_stream.h"

namespace spikeflow::pipeline {

namespace {

// Each factory takes the member as a generic accessor `[](auto& c) -> auto& { return c.x.y; }`,
// usable on a const and a mutable PipelineConfig alike.

template <typename Member>
ConfigKey integer(std::string name, std::string unit, int64_t min, int64_t max, std::string doc,
                  Member member) {
  ConfigKey k;
  k.type = ConfigKeyType::kInteger;
  k.min = static_cast<double>(min);
  k.max = static_cast<double>(max);
  k.read = [=](ConfigReader& r, PipelineConfig& c) {
    auto& m = member(c);
    m = static_cast<std::decay_t<decltype(m)>>(r.get_int(name, m, min, max, unit));
  };
  k.text = [=](const PipelineConfig& c) { return fmt::format("{}", member(c)); };
  k.name = std::move(name);
  k.unit = std::move(unit);
  k.doc = std::move(doc);
  return k;
}

template <typename Member>
ConfigKey number(std::string name, std::string unit, double min, double max, std::string doc,
                 Member member) {
  ConfigKey k;
  k.type = ConfigKeyType::kNumber;
  k.min = min;
  k.max = max;
  k.read = [=](ConfigReader& r, PipelineConfig& c) {
    member(c) = r.get_double(name, member(c), min, max, unit);
  };
  k.text = [=](const PipelineConfig& c) { return fmt::format("{}", member(c)); };
  k.name = std::move(name);
  k.unit = std::move(unit);
  k.doc = std::move(doc);
  return k;
}

/// A duration the file gives in ms and the config keeps in device/host ns (stages::BinnerOptions).
template <typename Member>
ConfigKey milliseconds(std::string name, double min, double max, std::string doc,
                       Member member_ns) {
  ConfigKey k;
  k.type = ConfigKeyType::kNumber;
  k.unit = "ms";
  k.min = min;
  k.max = max;
  k.read = [=](ConfigReader& r, PipelineConfig& c) {
    int64_t& ns = member_ns(c);
    const double ms = r.get_double(name, static_cast<double>(ns) / core::kNsPerMs, min, max, "ms");
    ns = std::llround(ms * core::kNsPerMs);
  };
  k.text = [=](const PipelineConfig& c) {
    return fmt::format("{}", static_cast<double>(member_ns(c)) / core::kNsPerMs);
  };
  k.name = std::move(name);
  k.doc = std::move(doc);
  return k;
}

template <typename Member>
ConfigKey boolean(std::string name, std::string doc, Member member) {
  ConfigKey k;
  k.type = ConfigKeyType::kBoolean;
  k.read = [=](ConfigReader& r, PipelineConfig& c) { member(c) = r.get_bool(name, member(c)); };
  k.text = [=](const PipelineConfig& c) { return std::string(member(c) ? "true" : "false"); };
  k.name = std::move(name);
  k.doc = std::move(doc);
  return k;
}

template <typename Member>
ConfigKey string(std::string name, std::string doc, Member member,
                 ConfigKeyType type = ConfigKeyType::kString) {
  ConfigKey k;
  k.type = type;
  k.read = [=](ConfigReader& r, PipelineConfig& c) { member(c) = r.get_string(name, member(c)); };
  k.text = [=](const PipelineConfig& c) { return member(c); };
  if (type == ConfigKeyType::kPath)
    k.path = [=](PipelineConfig& c) -> std::string& { return member(c); };
  k.name = std::move(name);
  k.doc = std::move(doc);
  return k;
}

/// A list of strings; the file gives a YAML sequence or one comma-separated scalar, to_yaml
/// writes the latter. check(item) returns an error text for a bad item, empty when good.
template <typename Member, typename Check>
ConfigKey string_list(std::string name, std::string doc, Member member, Check check) {
  ConfigKey k;
  k.type = ConfigKeyType::kString;
  k.read = [=](ConfigReader& r, PipelineConfig& c) {
    auto items = r.get_string_list(name, member(c));
    bool ok = true;
    for (const auto& item : items) {
      if (auto why = check(item); !why.empty()) {
        r.add_error(name, "'" + item + "': " + why);
        ok = false;
      }
    }
    if (ok) member(c) = std::move(items);
  };
  k.text = [=](const PipelineConfig& c) {
    std::string s;
    for (const auto& item : member(c)) s += (s.empty() ? "" : ", ") + item;
    return s;
  };
  k.name = std::move(name);
  k.doc = std::move(doc);
  return k;
}

/// A CPU list ("0-1,3"; empty = off), checked for syntax here; whether the CPUs are allowed to
/// this process is a property of the machine, checked by preflight (pipeline/realtime.h).
template <typename Member>
ConfigKey cpu_list(std::string name, std::string doc, Member member) {
  ConfigKey k = string(std::move(name), std::move(doc), member);
  auto read = k.read;
  k.read = [read, member, key = k.name](ConfigReader& r, PipelineConfig& c) {
    const std::string before = member(c);
    read(r, c);
    std::string why;
    if (!parse_cpu_list(member(c), &why)) {
      r.add_error(key, "'" + member(c) + "': " + why);
      member(c) = before;
    }
  };
  return k;
}

template <typename Member>
ConfigKey path(std::string name, std::string doc, Member member) {
  return string(std::move(name), std::move(doc), member, ConfigKeyType::kPath);
}

/// An enum member; the spellings come from config_enums.h.
template <typename Member>
ConfigKey choice(std::string name, std::string doc, Member member) {
  using E = std::decay_t<decltype(member(std::declval<PipelineConfig&>()))>;
  ConfigKey k;
  k.type = ConfigKeyType::kChoice;
  k.choices = enum_choices<E>();
  k.read = [=](ConfigReader& r, PipelineConfig& c) {
    std::vector<std::string> names;
    for (const auto& [v, n] : EnumNames<E>::names) names.emplace_back(n);
    E& m = member(c);
    m = parse_enum<E>(r.get_string(name, std::string(enum_name(m)), names)).value_or(m);
  };
  k.text = [=](const PipelineConfig& c) { return std::string(enum_name(member(c))); };
  k.name = std::move(name);
  k.doc = std::move(doc);
  return k;
}

/// ingest.intan.blocks_per_write. Read after ingest.format and ingest.sample_rate_hz and before
/// the chunking keys: for format intan it sets the defaults of chunking.deadline_grace_ms and
/// chunking.max_grace_ms from RHX's write period (a stock RHX sends a burst every 42.7 ms at
/// 30 kHz, 384 ms in its 3333 Hz mode), so a silent chunk waits for the burst that may still hold
/// its spikes; keys the file sets still win.
ConfigKey intan_blocks_per_write() {
  auto k = integer(
      "ingest.intan.blocks_per_write", "blocks", 1, 100,
      "RHX TCPNumberDataBlocksPerWrite (128 frames each); intan: chunking grace defaults to one "
      "write "
      "period + 10 ms",
      [](auto& c) -> auto& { return c.ingest.intan_blocks_per_write; });
  auto read = k.read;
  k.read = [read](ConfigReader& r, PipelineConfig& c) {
    read(r, c);
    if (c.ingest.format == IngestFormat::kIntan) apply_intan_chunking_defaults(c);
  };
  return k;
}

std::vector<ConfigKey> make_table() {
  // Member accessors, one per key.
#define SF_MEMBER(expr) \
  [](auto& c) -> auto& { return c.expr; }
  return {
      choice("ingest.format",
             "byte format of the stream: native (udp|tcp), blackrock (udp), intan (tcp)",
             SF_MEMBER(ingest.format)),
      choice("ingest.transport", "udp | tcp | none (in-process input: replay)",
             SF_MEMBER(ingest.transport)),
      string("ingest.address", "bind address; loopback unless you mean to listen on a network",
             SF_MEMBER(ingest.address)),
      integer("ingest.port", "", 0, 65535, "0 = ephemeral (the bound port is logged)",
              SF_MEMBER(ingest.port)),
      string_list("ingest.allow",
                  "sources that may send: CIDR list (10.1.2.0/24, ::1/128); empty = loopback only, "
                  "required when ingest.address is not loopback",
                  SF_MEMBER(ingest.allow),
                  [](const std::string& item) {
                    std::string why;
                    return CidrSet::parse_prefix(item, &why) ? std::string() : why;
                  }),
      integer("ingest.receive_buffer_bytes", "bytes", 4096, 1 << 30, "SO_RCVBUF request",
              SF_MEMBER(ingest.receive_buffer_bytes)),
      string("ingest.connect",
             "tcp: host:port to connect to (Intan RHX spike port 5002) instead of listening",
             SF_MEMBER(ingest.connect)),
      number("ingest.sample_rate_hz", "Hz", 1, 1'000'000'000,
             "device clock of Blackrock 3.x ticks (integer) / Intan samples (10000/3 = "
             "3333.3333333333 accepted)",
             SF_MEMBER(ingest.sample_rate_hz)),
      choice("ingest.blackrock.protocol",
             "Blackrock packet protocol (CereLink src/cbproto/include/cbproto/types.h; 4.2 = 4.1 "
             "header)",
             SF_MEMBER(ingest.blackrock_protocol)),
      choice("ingest.blackrock.time_units",
             "4.x time field: auto (ns until the NSP's PROCREP names a non-Gemini processor, as "
             "CereLink) | ns | ticks",
             SF_MEMBER(ingest.blackrock_time_units)),
      integer("ingest.blackrock.fe_channels", "channels", 1, 0x7FFF,
              "chids 1..this are front-end (spike) channels",
              SF_MEMBER(ingest.blackrock_fe_channels)),
      intan_blocks_per_write(),
      integer("ingest.busy_poll_us", "us", 0, 1000,
              "udp: after each datagram keep polling the socket this long before blocking again "
              "(0 = off; costs a core while it spins)",
              SF_MEMBER(ingest.busy_poll_us)),
      milliseconds("chunking.width_ms", 1.0, 10000.0,
                   "chunk width; must equal the width the decoder was trained on",
                   SF_MEMBER(chunking.width_ns)),
      milliseconds("chunking.lateness_ms", 0.0, 10000.0, "watermark slack for out-of-order spikes",
                   SF_MEMBER(chunking.lateness_ns)),
      milliseconds("chunking.deadline_grace_ms", 0.0, 10000.0,
                   "a silent chunk closes at end + lateness + grace (host clock)",
                   SF_MEMBER(chunking.deadline_grace_ns)),
      milliseconds("chunking.max_future_ms", 1.0, 60000.0,
                   "spikes further ahead than this are dropped", SF_MEMBER(chunking.max_future_ns)),
      boolean("chunking.deadline", "close silent chunks by the host-clock deadline",
              SF_MEMBER(chunking.deadline_enabled)),
      boolean("chunking.adaptive_grace",
              "grace follows 1.5x the recent transit jitter, up to max_grace_ms",
              SF_MEMBER(chunking.adaptive_grace)),
      milliseconds("chunking.max_grace_ms", 0.0, 10000.0, "upper bound of the adaptive grace",
                   SF_MEMBER(chunking.max_grace_ns)),
      number("chunking.tick_ms", "ms", 0.1, 100.0, "how often chunk deadlines are checked",
             SF_MEMBER(tick_ms)),
      milliseconds("chunking.clock_jump_ms", 1.0, 60000.0,
                   "a step back of the device clock larger than this starts a new epoch once "
                   "resync_after_packets packets agree (clamped to max_future_ms)",
                   SF_MEMBER(chunking.clock_jump_ns)),
      integer("chunking.resync_after_packets", "packets", 1, 1000,
              "consecutive packets on a new device clock that confirm a clock jump (the detection "
              "delay)",
              SF_MEMBER(chunking.resync_after_batches)),
      milliseconds("chunking.no_source_timeout_ms", 1.0, 60000.0,
                   "deadline predictions are flagged no_source after this long without any packet",
                   SF_MEMBER(chunking.no_source_timeout_ns)),
      integer("pipeline.graph_threads", "threads", 2, 64,
              "TBB workers for stage work queued behind a busy stage (the stages run inline on the "
              "ingest, ticker and decoder threads when free)",
              SF_MEMBER(graph_threads)),
      path("decoder.checkpoint", "required: a file written by `spikeflow train`",
           SF_MEMBER(decoder.checkpoint)),
      choice("decoder.device", "cuda needs a CUDA-enabled LibTorch", SF_MEMBER(decoder.device)),
      choice("decoder.path", "fast (plain C++ step) | torch (LibTorch modules) | auto",
             SF_MEMBER(decoder.path)),
      integer("decoder.threads", "threads", 1, 64, "intra-op threads for inference",
              SF_MEMBER(decoder.threads)),
      integer("decoder.max_batch", "chunks", 1, 4096,
              "most pending chunks decoded in one catch-up call", SF_MEMBER(decoder.max_batch)),
      integer("decoder.max_backlog", "chunks", 1, 1'000'000,
              "waiting chunks before tokens are shed", SF_MEMBER(decoder.max_backlog)),
      integer(
          "decoder.warmup_margin_us", "us", 0, 20000,
          "warm the decoder (its weights, code and work buffers: a stand-in step that changes no "
          "state) this long before the next chunk is due (last close + width; at most half a "
          "width); 0 = off; skipped while a chunk is pending",
          SF_MEMBER(decoder.warmup_margin_us)),
      integer(
          "decoder.spin_us", "us", 0, 20000,
          "after the warm-up, the decoder thread polls for the chunk instead of sleeping until "
          "this long past its expected close, so the hand-off costs no wake-up (0 = off; costs "
          "a core for warmup_margin_us + spin_us per chunk; it polls only after a warm-up, so it "
          "needs decoder.warmup_margin_us > 0)",
          SF_MEMBER(decoder.spin_us)),
      boolean("publish.enabled", "false: open no ZeroMQ socket (embedded pipeline: callbacks only)",
              SF_MEMBER(publish.enabled)),
      string("publish.endpoint", "ZeroMQ PUB endpoint: tcp://, ipc:// or inproc://",
             SF_MEMBER(publish.endpoint)),
      string("publish.topic", "topic of prediction messages", SF_MEMBER(publish.topic)),
      string("publish.stats_topic", "counters + latency JSON every metrics.print_interval_s",
             SF_MEMBER(publish.stats_topic)),
      choice("publish.format", "prediction payload (README \"Prediction message\")",
             SF_MEMBER(publish.format)),
      integer("publish.send_high_water_mark", "messages", 1, 10'000'000,
              "messages queued per subscriber before ZeroMQ drops",
              SF_MEMBER(publish.send_high_water_mark)),
      integer("publish.linger_ms", "ms", 0, 60000, "how long close waits for queued messages",
              SF_MEMBER(publish.linger_ms)),
      boolean("publish.allow_remote",
              "required to bind publish.endpoint on a non-loopback interface",
              SF_MEMBER(publish.allow_remote)),
      path("publish.curve_secret_key_file",
           "CURVE server secret key (z85, `spikeflow keygen`); empty = plain",
           SF_MEMBER(publish.curve_secret_key_file)),
      path("publish.curve_public_key_file",
           "CURVE server public key; optional, must match the secret key",
           SF_MEMBER(publish.curve_public_key_file)),
      path("publish.curve_clients_dir",
           "folder of authorised client public keys (*.key); empty = any client",
           SF_MEMBER(publish.curve_clients_dir)),
      boolean("publish.immediate", "ZMQ_IMMEDIATE: queue messages only to completed connections",
              SF_MEMBER(publish.immediate)),
      path("record.path", "recording file (replay/recording_file.h); empty = off",
           SF_MEMBER(record.path)),
      integer("record.queue_capacity", "items", 16, 10'000'000,
              "items buffered for the recorder thread", SF_MEMBER(record.queue_capacity)),
      cpu_list("realtime.affinity.ingest", "CPUs of the ingest thread, e.g. 0-1,3; empty = any",
               SF_MEMBER(realtime.affinity_ingest)),
      cpu_list("realtime.affinity.ticker", "CPUs of the deadline ticker thread; empty = any",
               SF_MEMBER(realtime.affinity_ticker)),
      cpu_list("realtime.affinity.decoder",
               "CPUs of the decoder thread (the decoder step, its warm-up, the publish); empty = "
               "any",
               SF_MEMBER(realtime.affinity_decoder)),
      cpu_list("realtime.affinity.graph",
               "CPUs of the graph's TBB workers (stage work queued behind a busy stage); empty = "
               "any",
               SF_MEMBER(realtime.affinity_graph)),
      cpu_list("realtime.affinity.zmq_io",
               "CPUs of ZeroMQ's I/O threads (ZMQ_THREAD_AFFINITY_CPU_ADD); empty = any",
               SF_MEMBER(realtime.affinity_zmq_io)),
      integer(
          "realtime.sched_fifo_priority", "", 0, 99,
          "SCHED_FIFO for ingest, ticker, decoder, graph workers and ZeroMQ I/O threads; 0 = off; "
          "needs CAP_SYS_NICE or RLIMIT_RTPRIO",
          SF_MEMBER(realtime.sched_fifo_priority)),
      boolean("realtime.mlockall",
              "mlockall(MCL_CURRENT|MCL_FUTURE) at start; needs CAP_IPC_LOCK or RLIMIT_MEMLOCK",
              SF_MEMBER(realtime.mlockall)),
      number("metrics.print_interval_s", "s", 0.0, 3600.0, "0 = no periodic line",
             SF_MEMBER(metrics.print_interval_s)),
  };
#undef SF_MEMBER
}

}  // namespace

std::string ConfigKey::type_name() const {
  switch (type) {
    case ConfigKeyType::kInteger:
      return "integer";
    case ConfigKeyType::kNumber:
      return "number";
    case ConfigKeyType::kBoolean:
      return "boolean";
    case ConfigKeyType::kString:
      return "string";
    case ConfigKeyType::kChoice:
      return "choice";
    case ConfigKeyType::kPath:
      return "path";
  }
  return "?";
}

std::string ConfigKey::range_text() const {
  switch (type) {
    case ConfigKeyType::kInteger:
      return fmt::format("[{}, {}]", static_cast<int64_t>(min), static_cast<int64_t>(max));
    case ConfigKeyType::kNumber:
      return fmt::format("[{}, {}]", min, max);
    case ConfigKeyType::kBoolean:
      return "true|false";
    case ConfigKeyType::kChoice:
      return choices;
    case ConfigKeyType::kPath:
      return "relative to the config file";
    case ConfigKeyType::kString:
      return "";
  }
  return "";
}

void apply_intan_chunking_defaults(PipelineConfig& c) {
  constexpr int64_t kMargin = 10 * core::kNsPerMs;
  constexpr int64_t kMaxGrace = 10'000 * core::kNsPerMs;  // the keys' upper bound
  const int64_t period =
      stages::intan_write_period_ns(c.ingest.intan_blocks_per_write, c.ingest.sample_rate_hz);
  const int64_t grace = std::min(kMaxGrace, period + kMargin);
  c.chunking.deadline_grace_ns = std::max(c.chunking.deadline_grace_ns, grace);
  c.chunking.max_grace_ns = std::max(c.chunking.max_grace_ns, std::min(kMaxGrace, 2 * grace));
}

const std::vector<ConfigKey>& pipeline_config_keys() {
  static const std::vector<ConfigKey> table = make_table();
  return table;
}

const ConfigKey& pipeline_config_key(const std::string& name) {
  for (const auto& k : pipeline_config_keys()) {
    if (k.name == name) return k;
  }
  throw std::logic_error("no config key '" + name + "'");
}

}  // namespace spikeflow::pipeline
