#include "pipeline/config_reader.h"

#include <cmath>
#include <sstream>

namespace spikeflow::pipeline {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "; " : "") + v[i];
  return s;
}

std::vector<std::string> split_dots(const std::string& key) {
  std::vector<std::string> parts;
  std::stringstream ss(key);
  std::string p;
  while (std::getline(ss, p, '.')) parts.push_back(p);
  return parts;
}

/// True for well-formed UTF-8 (no overlong forms, surrogates or code points above U+10FFFF).
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    size_t len = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2;
      cp = c & 0x1Fu;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3;
      cp = c & 0x0Fu;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4;
      cp = c & 0x07u;
    } else {
      return false;
    }
    if (s.size() - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto d = static_cast<unsigned char>(s[i + k]);
      if ((d & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (d & 0x3Fu);
    }
    static constexpr uint32_t kMin[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += len;
  }
  return true;
}

template <typename T>
std::string str(T v) {
  std::ostringstream o;
  o << v;
  return o.str();
}

}  // namespace

ConfigError::ConfigError(const std::string& source, std::vector<std::string> problems)
    : std::runtime_error(source + ": " + join(problems)), problems_(std::move(problems)) {}

ConfigReader::ConfigReader(YAML::Node root, std::string source)
    : root_(std::move(root)), source_(std::move(source)) {
  if (root_ && !root_.IsNull() && !root_.IsMap()) {
    errors_.push_back("top level must be a mapping of sections");
    root_ = YAML::Node();
  }
  if (root_) collect_duplicates(root_, "");
}

void ConfigReader::collect_duplicates(const YAML::Node& node, const std::string& prefix) {
  if (!node.IsMap()) return;
  std::set<std::string> seen;
  for (const auto& kv : node) {
    const std::string name = prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar();
    if (!seen.insert(kv.first.Scalar()).second) {
      errors_.push_back(name + ": duplicate key (each key may appear once)");
      continue;
    }
    collect_duplicates(kv.second, name);
  }
}

// Walks without assigning Nodes: yaml-cpp's Node::operator= rebinds the referenced tree.
static YAML::Node walk(const YAML::Node& node, const std::vector<std::string>& parts, size_t i) {
  if (i == parts.size()) return node;
  if (!node.IsDefined() || !node.IsMap()) return YAML::Node(YAML::NodeType::Undefined);
  const YAML::Node child = node[parts[i]];
  return walk(child, parts, i + 1);
}

YAML::Node ConfigReader::lookup(const std::string& key) {
  declared_.insert(key);
  const YAML::Node& root = root_;
  return walk(root, split_dots(key), 0);
}

int64_t ConfigReader::get_int(const std::string& key, int64_t def, int64_t min, int64_t max,
                              const std::string& unit) {
  YAML::Node n = lookup(key);
  if (!n.IsDefined() || n.IsNull()) return def;
  int64_t v = def;
  try {
    if (!n.IsScalar()) throw YAML::Exception(YAML::Mark::null_mark(), "");
    v = n.as<int64_t>();
  } catch (const YAML::Exception&) {
    add_error(key, "expected an integer" + (unit.empty() ? "" : " (" + unit + ")"));
    return def;
  }
  if (v < min || v > max) {
    add_error(key, "must be in [" + str(min) + ", " + str(max) + "]" +
                       (unit.empty() ? "" : " " + unit) + ", got " + str(v));
    return def;
  }
  return v;
}

double ConfigReader::get_double(const std::string& key, double def, double min, double max,
                                const std::string& unit) {
  YAML::Node n = lookup(key);
  if (!n.IsDefined() || n.IsNull()) return def;
  double v = def;
  try {
    if (!n.IsScalar()) throw YAML::Exception(YAML::Mark::null_mark(), "");
    v = n.as<double>();
  } catch (const YAML::Exception&) {
    add_error(key, "expected a number" + (unit.empty() ? "" : " (" + unit + ")"));
    return def;
  }
  if (!std::isfinite(v) || v < min || v > max) {
    add_error(key, "must be in [" + str(min) + ", " + str(max) + "]" +
                       (unit.empty() ? "" : " " + unit) + ", got " + str(v));
    return def;
  }
  return v;
}

bool ConfigReader::get_bool(const std::string& key, bool def) {
  YAML::Node n = lookup(key);
  if (!n.IsDefined() || n.IsNull()) return def;
  try {
    if (!n.IsScalar()) throw YAML::Exception(YAML::Mark::null_mark(), "");
    return n.as<bool>();
  } catch (const YAML::Exception&) {
    add_error(key, "expected true or false");
    return def;
  }
}

std::string ConfigReader::get_string(const std::string& key, const std::string& def,
                                     const std::vector<std::string>& allowed) {
  std::string range;
  for (size_t i = 0; i < allowed.size(); ++i) range += (i ? "|" : "") + allowed[i];
  YAML::Node n = lookup(key);
  if (!n.IsDefined() || n.IsNull()) return def;
  if (!n.IsScalar()) {
    add_error(key, "expected a string");
    return def;
  }
  std::string v = n.Scalar();
  // YAML text is Unicode; yaml-cpp reads stray bytes as they are but writes them back as U+FFFD,
  // so a recording's config (to_yaml) would no longer read back to the same value.
  if (!valid_utf8(v)) {
    add_error(key, "not valid UTF-8");
    return def;
  }
  if (!allowed.empty()) {
    bool ok = false;
    for (const auto& a : allowed) ok = ok || a == v;
    if (!ok) {
      add_error(key, "must be one of " + range + ", got '" + v + "'");
      return def;
    }
  }
  return v;
}

std::vector<std::string> ConfigReader::get_string_list(const std::string& key,
                                                       const std::vector<std::string>& def) {
  YAML::Node n = lookup(key);
  if (!n.IsDefined() || n.IsNull()) return def;
  std::vector<std::string> items;
  auto add = [&](const std::string& text) {
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) {
      const auto b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
      if (b != std::string::npos) items.push_back(item.substr(b, e - b + 1));
    }
  };
  if (n.IsScalar()) {
    add(n.Scalar());
  } else if (n.IsSequence()) {
    for (const auto& item : n) {
      if (!item.IsScalar()) {
        add_error(key, "expected a list of strings");
        return def;
      }
      add(item.Scalar());
    }
  } else {
    add_error(key, "expected a list of strings");
    return def;
  }
  return items;
}

void ConfigReader::add_error(const std::string& key, const std::string& reason) {
  errors_.push_back(key + ": " + reason);
}

void ConfigReader::collect_unknown(const YAML::Node& node, const std::string& prefix) {
  if (!node.IsMap()) return;
  for (const auto& kv : node) {
    const std::string name = prefix.empty() ? kv.first.Scalar() : prefix + "." + kv.first.Scalar();
    bool is_section = false;
    for (const auto& d : declared_) {
      if (d.rfind(name + ".", 0) == 0) is_section = true;
    }
    if (declared_.count(name)) continue;
    if (is_section) {
      if (!kv.second.IsMap()) {
        errors_.push_back(name + ": expected a mapping (section)");
      } else {
        collect_unknown(kv.second, name);
      }
      continue;
    }
    errors_.push_back(name + ": unknown key");
  }
}

void ConfigReader::finish() {
  if (root_) collect_unknown(root_, "");
  if (!errors_.empty()) throw ConfigError(source_, errors_);
}

}  // namespace spikeflow::pipeline
