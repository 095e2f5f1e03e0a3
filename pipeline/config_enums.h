// The choices a pipeline config (and the CLI flags that mirror it) can make, as enums parsed
// once at setup. One name table per enum, here and nowhere else: parse_enum, to_string and
// enum_choices all read it, so a YAML value, a CLI flag, to_yaml and --describe-config can never
// disagree on the spelling. Setup only; header-only, no YAML.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "stages/blackrock_packet_decoder.h"

namespace spikeflow::pipeline {

/// Byte format of the ingest stream (README "Ingest formats").
enum class IngestFormat { kNative, kBlackrock, kIntan };
/// How events arrive: a UDP socket, a TCP listener, or pushed in-process (replay, tests).
enum class Transport { kUdp, kTcp, kNone };
/// Where inference runs (models::RuntimeOptions::device).
enum class DecoderDevice { kCpu, kCuda };
/// POSSM inference path (models::RuntimeOptions::path).
enum class DecoderPath { kAuto, kFast, kTorch };
/// Prediction message payload (README "Prediction message").
enum class PublishFormat { kBinary, kJson };

/// Name table of an enum: names[i] = {value, spelling}. Specialised below for every choice.
template <typename E>
struct EnumNames;

template <>
struct EnumNames<IngestFormat> {
  static constexpr std::array names{
      std::pair{IngestFormat::kNative, std::string_view("native")},
      std::pair{IngestFormat::kBlackrock, std::string_view("blackrock")},
      std::pair{IngestFormat::kIntan, std::string_view("intan")}};
};
template <>
struct EnumNames<Transport> {
  static constexpr std::array names{std::pair{Transport::kUdp, std::string_view("udp")},
                                    std::pair{Transport::kTcp, std::string_view("tcp")},
                                    std::pair{Transport::kNone, std::string_view("none")}};
};
template <>
struct EnumNames<stages::BlackrockProtocol> {
  static constexpr std::array names{
      std::pair{stages::BlackrockProtocol::kV3_11, std::string_view("3.11")},
      std::pair{stages::BlackrockProtocol::kV4_0, std::string_view("4.0")},
      std::pair{stages::BlackrockProtocol::kV4_1, std::string_view("4.1")},
      // 4.2 (CereLink's current protocol) keeps the 4.1 header.
      std::pair{stages::BlackrockProtocol::kV4_1, std::string_view("4.2")}};
};
template <>
struct EnumNames<stages::BlackrockTimeUnits> {
  static constexpr std::array names{
      std::pair{stages::BlackrockTimeUnits::kAuto, std::string_view("auto")},
      std::pair{stages::BlackrockTimeUnits::kNs, std::string_view("ns")},
      std::pair{stages::BlackrockTimeUnits::kTicks, std::string_view("ticks")}};
};
template <>
struct EnumNames<DecoderDevice> {
  static constexpr std::array names{std::pair{DecoderDevice::kCpu, std::string_view("cpu")},
                                    std::pair{DecoderDevice::kCuda, std::string_view("cuda")}};
};
template <>
struct EnumNames<DecoderPath> {
  static constexpr std::array names{std::pair{DecoderPath::kAuto, std::string_view("auto")},
                                    std::pair{DecoderPath::kFast, std::string_view("fast")},
                                    std::pair{DecoderPath::kTorch, std::string_view("torch")}};
};
template <>
struct EnumNames<PublishFormat> {
  static constexpr std::array names{std::pair{PublishFormat::kBinary, std::string_view("binary")},
                                    std::pair{PublishFormat::kJson, std::string_view("json")}};
};

/// The spelling of a value ("blackrock", "4.1").
template <typename E>
constexpr std::string_view enum_name(E value) {
  for (const auto& [v, name] : EnumNames<E>::names) {
    if (v == value) return name;
  }
  return "?";
}

// to_string overloads returning std::string, not one template: a template would tie with
// CLI11's own to_string under argument-dependent lookup, and CLI11 wants a std::string back.
inline std::string to_string(IngestFormat v) { return std::string(enum_name(v)); }
inline std::string to_string(Transport v) { return std::string(enum_name(v)); }
inline std::string to_string(stages::BlackrockProtocol v) { return std::string(enum_name(v)); }
inline std::string to_string(stages::BlackrockTimeUnits v) { return std::string(enum_name(v)); }
inline std::string to_string(DecoderDevice v) { return std::string(enum_name(v)); }
inline std::string to_string(DecoderPath v) { return std::string(enum_name(v)); }
inline std::string to_string(PublishFormat v) { return std::string(enum_name(v)); }

/// The value spelled text, or nullopt when text is none of the names (exact match).
template <typename E>
constexpr std::optional<E> parse_enum(std::string_view text) {
  for (const auto& [v, name] : EnumNames<E>::names) {
    if (name == text) return v;
  }
  return std::nullopt;
}

/// Every name, "a|b|c", for documentation and error messages.
template <typename E>
std::string enum_choices() {
  std::string s;
  for (const auto& [v, name] : EnumNames<E>::names) {
    if (!s.empty()) s += '|';
    s += name;
  }
  return s;
}

/// Why a format cannot travel over a transport, or nullopt when the pair is supported:
/// native over udp/tcp/none, blackrock over udp (or none), intan over tcp (or none). The one
/// place this rule lives (config reading, `spikeflow send`, send_events).
constexpr std::optional<std::string_view> format_transport_problem(IngestFormat format,
                                                                   Transport transport) {
  if (format == IngestFormat::kBlackrock && transport == Transport::kTcp) {
    return "blackrock spike packets come over udp";
  }
  if (format == IngestFormat::kIntan && transport == Transport::kUdp)
    return "the Intan RHX spike stream is tcp";
  return std::nullopt;
}

}  // namespace spikeflow::pipeline
