// The pipeline config's key table: every key `spikeflow run` accepts, declared once with its
// type, unit, range, doc line and how it maps onto a PipelineConfig member. The table drives
// reading (parse_pipeline_config), writing (to_yaml), documentation (--describe-config), path
// resolution and the ranges of the CLI flags that mirror a key; defaults are whatever a
// default-constructed PipelineConfig holds (taken from the stages' Options structs), so no
// default is written twice. Setup only; the table is immutable after first use (thread-safe).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "pipeline/config_reader.h"
#include "pipeline/pipeline_config.h"

namespace spikeflow::pipeline {

enum class ConfigKeyType { kInteger, kNumber, kBoolean, kString, kChoice, kPath };

struct ConfigKey {
  std::string name;  ///< dotted path, "ingest.port"
  ConfigKeyType type = ConfigKeyType::kString;
  std::string unit;  ///< "ms", "Hz", ... or empty
  double min = 0;    ///< numeric keys: inclusive range, in the key's unit
  double max = 0;
  std::string choices;  ///< kChoice: "a|b|c"
  std::string doc;      ///< one line for --describe-config
  /// Reads the key from r into config (missing: leaves the member, i.e. the default, as is).
  std::function<void(ConfigReader& r, PipelineConfig& config)> read;
  /// The member's value as YAML scalar text, in the key's unit ("50", "4.1", "tcp://...").
  std::function<std::string(const PipelineConfig& config)> text;
  /// kPath only: the member, for resolving a relative path against the config file's folder.
  std::function<std::string&(PipelineConfig& config)> path;

  std::string type_name() const;   ///< "integer", "number", "boolean", "string", "choice", "path"
  std::string range_text() const;  ///< "[0, 65535]", "native|blackrock|intan", "true|false", ""
  std::string default_text() const { return text(PipelineConfig{}); }
};

/// Per-format defaults of format intan (see ingest.intan.blocks_per_write): raises
/// chunking.deadline_grace_ns to one RHX write period + 10 ms and max_grace_ns to twice that.
/// Applied while reading, before the chunking keys; call it yourself on a config built in code.
void apply_intan_chunking_defaults(PipelineConfig& config);

/// Every key, in file order (ingest, chunking, pipeline, decoder, publish, record, realtime,
/// metrics).
const std::vector<ConfigKey>& pipeline_config_keys();

/// The key named name; throws std::logic_error for a name not in the table (a programming error).
const ConfigKey& pipeline_config_key(const std::string& name);

}  // namespace spikeflow::pipeline
