// CLI11 validators shared by the subcommands, so that a flag that mirrors a config key takes the
// key's range from the key table (pipeline/config_keys.h) instead of repeating it, and every
// numeric flag rejects nan/inf. A failed check is a one-line error naming the flag (main.cpp).
// Each check is one validator, so a bad value gets exactly one message.
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <type_traits>

#include <CLI/CLI.hpp>

#include "pipeline/config_enums.h"
#include "pipeline/config_keys.h"

namespace spikeflow::cli {

/// A finite number in [min, max] (max may be +inf). Rejects nan and ±inf, which strtod accepts
/// and CLI::Range lets through. Text that is not a number passes here and fails the option's own
/// conversion. The message reads "--flag: must be in [0, 65535], got 70000".
inline CLI::Validator finite_range(double min, double max) {
  const std::string range =
      std::isinf(max) ? fmt::format(">= {}", min) : fmt::format("in [{}, {}]", min, max);
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0') return {};
        if (!std::isfinite(v)) return "must be a finite number, got " + text;
        if (v < min || v > max) return "must be " + range + ", got " + text;
        return {};
      },
      range);
}

/// A finite number in [min, max].
inline CLI::Option* in_range(CLI::Option* option, double min, double max) {
  return option->check(finite_range(min, max));
}

/// A finite number >= 0.
inline CLI::Option* non_negative(CLI::Option* option) {
  return option->check(finite_range(0, std::numeric_limits<double>::infinity()));
}

/// The inclusive range of a numeric config key, in the key's unit ("ingest.port" -> [0, 65535]).
inline CLI::Option* in_key_range(CLI::Option* option, const std::string& key) {
  const auto& k = pipeline::pipeline_config_key(key);
  return in_range(option, k.min, k.max);
}

/// Maps the spellings of a config enum (config_enums.h) onto its values, for
/// `->transform(enum_names<E>())`; anything else is an error listing the choices.
template <typename E>
CLI::Validator enum_names() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        const auto v = pipeline::parse_enum<E>(text);
        if (!v) return "must be one of " + pipeline::enum_choices<E>() + ", got '" + text + "'";
        text =
            std::to_string(static_cast<std::underlying_type_t<E>>(*v));  // what CLI11 reads into E
        return {};
      },
      pipeline::enum_choices<E>());
}

}  // namespace spikeflow::cli
