// ConfigReader: typed, range-checked access to a YAML config with every error collected.
// Each get_* reads one key (dotted path) with its type, unit, default and range; a missing key
// takes the default, a present one is checked. pipeline/config_keys.cpp declares which keys
// exist; this class knows nothing of them. The constructor reports keys a mapping repeats
// (yaml-cpp would silently keep the first); finish() adds an error for every key present in the
// file that no get_* read (unknown keys are errors) and throws ConfigError listing all problems
// at once. Used at setup only (never on the hot path). Not thread-safe.
#pragma once

#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

namespace spikeflow::pipeline {

/// Thrown for an unreadable or invalid config. what() is one line: "<file>: <problem>; <problem>".
class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& source, std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

class ConfigReader {
 public:
  /// root may be a null node (no file: all defaults). source names the file in errors.
  ConfigReader(YAML::Node root, std::string source);

  int64_t get_int(const std::string& key, int64_t def, int64_t min, int64_t max,
                  const std::string& unit = "");
  double get_double(const std::string& key, double def, double min, double max,
                    const std::string& unit = "");
  bool get_bool(const std::string& key, bool def);
  std::string get_string(const std::string& key, const std::string& def,
                         const std::vector<std::string>& allowed = {});
  /// A list of strings: a YAML sequence of scalars, or one scalar of comma-separated items
  /// (what to_yaml writes back); items are trimmed and empty ones skipped.
  std::vector<std::string> get_string_list(const std::string& key,
                                           const std::vector<std::string>& def);

  /// Adds a problem found by a cross-key check (e.g. lateness > width).
  void add_error(const std::string& key, const std::string& reason);

  /// Reports unknown keys, then throws ConfigError if there is any problem.
  void finish();

 private:
  YAML::Node lookup(const std::string& key);
  void collect_unknown(const YAML::Node& node, const std::string& prefix);
  void collect_duplicates(const YAML::Node& node, const std::string& prefix);

  YAML::Node root_;
  std::string source_;
  std::set<std::string> declared_;
  std::vector<std::string> errors_;
};

}  // namespace spikeflow::pipeline
