#include "pipeline/preflight.h"

#include "models/load_decoder.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <optional>
#include <utility>

#include "core/time.h"
#include "pipeline/ingest.h"
#include "pipeline/realtime.h"
#include "pipeline/zmq_publisher.h"
#include "stages/blackrock_packet.h"
#include "stages/intan_spike_stream.h"

namespace spikeflow::pipeline {

namespace {

/// The channels the ingest format can produce, [lo, hi], or nullopt for any u32.
struct ChannelRange {
  uint32_t lo, hi;
  std::string text;
  uint32_t chid_max = 0;  ///< > 0: channels are instrument * 65536 + chid, chid in [1, chid_max]

  bool contains(uint32_t channel) const {
    if (channel < lo || channel > hi) return false;
    if (chid_max == 0) return true;
    const uint32_t chid = channel % 65536;
    return chid >= 1 && chid <= chid_max;
  }
};

std::optional<ChannelRange> channel_range(const IngestConfig& ingest) {
  switch (ingest.format) {
    case IngestFormat::kNative:
      return std::nullopt;
    case IngestFormat::kBlackrock: {
      // channel = instrument * 65536 + chid (stages::blackrock_channel_key); 3.11: instrument 0.
      const auto fe = static_cast<uint32_t>(ingest.blackrock_fe_channels);
      const bool v311 = ingest.blackrock_protocol == stages::BlackrockProtocol::kV3_11;
      const uint32_t hi = v311 ? fe : stages::blackrock_channel_key(255, static_cast<uint16_t>(fe));
      return ChannelRange{
          1, hi,
          v311 ? fmt::format("chid 1..{} (ingest.blackrock.fe_channels; chids are 1-based)", fe)
               : fmt::format("instrument * 65536 + chid, chid 1..{} (ingest.blackrock.fe_channels; "
                             "chids are 1-based)",
                             fe),
          v311 ? 0u : fe};
    }
    case IngestFormat::kIntan: {
      const uint32_t hi = stages::kIntanPorts * stages::kIntanChannelsPerPort - 1;
      return ChannelRange{
          0, hi, fmt::format("ports A..H x {} = channels 0..{}", stages::kIntanChannelsPerPort, hi),
          0};
    }
  }
  return std::nullopt;
}

void check_unit_map(const PipelineConfig& config, const models::StreamingDecoder& decoder,
                    PreflightReport& report) {
  if (config.ingest.transport == Transport::kNone) return;  // in-process input: no wire format
  const auto range = channel_range(config.ingest);
  if (!range) return;
  const auto& units = decoder.units();
  size_t outside = 0;
  const core::UnitKey* first = nullptr;
  for (const auto& u : units) {
    if (!range->contains(u.channel)) {
      ++outside;
      if (!first) first = &u;
    }
  }
  if (outside == 0) return;
  const std::string format(to_string(config.ingest.format));
  if (outside == units.size()) {
    report.errors.push_back(
        fmt::format("ingest.format: none of the {} units of checkpoint '{}' can arrive as {} ({}; "
                    "first: channel {})",
                    units.size(), config.decoder.checkpoint, format, range->text, first->channel));
  } else {
    report.warnings.push_back(fmt::format(
        "ingest.format: {} of the {} units of checkpoint '{}' can never arrive as {} ({}; first: "
        "channel {}); "
        "they decode as silent",
        outside, units.size(), config.decoder.checkpoint, format, range->text, first->channel));
  }
}

/// Who may talk to the pipeline: ingest sources and publish reach (README "Who may talk to it").
void check_access(const PipelineConfig& config, PreflightReport& report) {
  const auto& in = config.ingest;
  // Client mode (ingest.connect) binds nothing: the pipeline dials the configured server, so
  // ingest.address, and the loopback rule that guards a listening socket, play no part.
  const bool client = in.transport == Transport::kTcp && !in.connect.empty();
  if (in.transport != Transport::kNone) {
    if (!client) {
      boost::system::error_code ec;
      const auto address = boost::asio::ip::make_address(in.address, ec);
      if (ec) {
        report.errors.push_back(
            fmt::format("ingest.address: '{}' is not an IP address", in.address));
      } else if (!is_loopback(address) && in.allow.empty()) {
        report.errors.push_back(fmt::format(
            "ingest.address {} is not loopback: set ingest.allow to the sources that may send",
            in.address));
      }
    }
    try {
      (void)allowed_sources(in);
    } catch (const std::exception& e) {
      report.errors.push_back(e.what());
    }
  }
  const auto& pub = config.publish;
  if (!pub.allow_remote && !endpoint_is_loopback(pub.endpoint)) {
    report.errors.push_back(
        fmt::format("publish.endpoint {} is not loopback: set publish.allow_remote: true to "
                    "publish beyond this host (and consider publish.curve_secret_key_file)",
                    pub.endpoint));
  }
  if (pub.curve_secret_key_file.empty()) {
    if (!pub.curve_public_key_file.empty()) {
      report.errors.push_back("publish.curve_public_key_file: needs publish.curve_secret_key_file");
    }
    if (!pub.curve_clients_dir.empty())
      report.errors.push_back("publish.curve_clients_dir: needs publish.curve_secret_key_file");
    return;
  }
  if (!curve_available()) {
    report.errors.push_back(
        "publish.curve_secret_key_file: this libzmq was built without CURVE "
        "(zmq_has(\"curve\") is false)");
    return;
  }
  for (const auto& [key, file] : {std::pair<const char*, const std::string&>{
                                      "publish.curve_secret_key_file", pub.curve_secret_key_file},
                                  {"publish.curve_public_key_file", pub.curve_public_key_file}}) {
    if (file.empty()) continue;
    try {
      (void)read_curve_key_file(file, key);
    } catch (const std::exception& e) {
      report.errors.push_back(e.what());
    }
  }
  std::error_code ec;
  if (!pub.curve_clients_dir.empty() && !std::filesystem::is_directory(pub.curve_clients_dir, ec)) {
    report.errors.push_back(
        fmt::format("publish.curve_clients_dir: '{}' is not a folder", pub.curve_clients_dir));
  }
}

/// Problems of the config on this machine, without the checkpoint.
void check_config(const PipelineConfig& config, bool cuda_available, PreflightReport& report) {
  if (config.decoder.checkpoint.empty()) {
    report.errors.push_back(
        "decoder.checkpoint: not set (set it in the config or pass --checkpoint)");
  }
  if (config.decoder.device == DecoderDevice::kCuda && !cuda_available) {
    report.errors.push_back(
        "decoder.device: cuda, but this LibTorch build has no CUDA support or sees no GPU; "
        "use cpu");
  }
  if (!config.record.path.empty()) {
    const auto dir = std::filesystem::path(config.record.path).parent_path();
    std::error_code ec;
    if (!dir.empty() && !std::filesystem::is_directory(dir, ec)) {
      report.errors.push_back(fmt::format("record.path: folder '{}' does not exist", dir.string()));
    }
  }
  check_access(config, report);
  // A knob asked for and not permitted here stops the run: a rig that asked for SCHED_FIFO must
  // not run silently without it.
  for (auto& e : check_realtime(config.realtime)) report.errors.push_back(std::move(e));
}

/// Problems of the config with the loaded checkpoint.
void check_model(const PipelineConfig& config, const models::StreamingDecoder& decoder,
                 PreflightReport& report) {
  const int64_t want = config.chunking.width_ns, trained = decoder.chunk_width_ns();
  if (want != trained) {
    report.errors.push_back(
        fmt::format("chunking.width_ms: {} ms, but checkpoint '{}' was trained on {} ms chunks",
                    static_cast<double>(want) / core::kNsPerMs, config.decoder.checkpoint,
                    static_cast<double>(trained) / core::kNsPerMs));
  }
  check_unit_map(config, decoder, report);
}

}  // namespace

PreflightReport preflight(const PipelineConfig& config, const models::StreamingDecoder* decoder,
                          bool cuda_available) {
  PreflightReport report;
  check_config(config, cuda_available, report);
  if (decoder) check_model(config, *decoder, report);
  return report;
}

std::unique_ptr<models::StreamingDecoder> load_checked_decoder(const PipelineConfig& config,
                                                               const std::string& source) {
  const bool cuda = models::cuda_available();
  PreflightReport report;
  check_config(config, cuda, report);
  std::unique_ptr<models::StreamingDecoder> decoder;
  if (!config.decoder.checkpoint.empty()) {
    models::RuntimeOptions rt = runtime_options(config.decoder);
    // A missing device must not hide the checkpoint's problems: check it on the CPU (the run
    // fails on the device error anyway).
    if (config.decoder.device == DecoderDevice::kCuda && !cuda) rt.device = "cpu";
    try {
      decoder = models::load_decoder(config.decoder.checkpoint, rt);
    } catch (const std::exception& e) {
      report.errors.push_back(std::string("decoder.checkpoint: ") + e.what());
    }
  }
  if (decoder) check_model(config, *decoder, report);
  if (!report.errors.empty()) throw ConfigError(source, report.errors);
  for (const auto& w : report.warnings) spdlog::warn("preflight: {}", w);
  return decoder;
}

}  // namespace spikeflow::pipeline
