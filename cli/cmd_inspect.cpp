// spikeflow inspect FILE: what a checkpoint, session or recording holds, told by its content (magic
// bytes), not its name. Human-readable by default; --json prints the same facts as one JSON object
// for scripts. Builds one tree of facts per file kind and renders it either way.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "models/checkpoint_file.h"
#include "replay/nwb_session_reader.h"
#include "replay/recording_file.h"
#include "replay/session_file.h"

namespace spikeflow::cli {

namespace {

/// A JSON-shaped value: null, bool, integer, number, string, array or (ordered) object.
struct Value {
  enum class Kind { kNull, kBool, kInt, kNumber, kString, kArray, kObject } kind = Kind::kNull;
  bool b = false;
  int64_t i = 0;
  double d = 0;
  std::string s;
  std::vector<Value> arr;
  std::vector<std::pair<std::string, Value>> obj;

  Value() = default;
  Value(bool v) : kind(Kind::kBool), b(v) {}
  Value(int v) : kind(Kind::kInt), i(v) {}
  Value(int64_t v) : kind(Kind::kInt), i(v) {}
  Value(uint64_t v) : kind(Kind::kInt), i(static_cast<int64_t>(v)) {}
  Value(uint32_t v) : kind(Kind::kInt), i(v) {}
  Value(double v) : kind(Kind::kNumber), d(v) {}
  Value(std::string v) : kind(Kind::kString), s(std::move(v)) {}
  Value(const char* v) : kind(Kind::kString), s(v) {}
  static Value array() {
    Value v;
    v.kind = Kind::kArray;
    return v;
  }
  static Value object() {
    Value v;
    v.kind = Kind::kObject;
    return v;
  }
  Value& add(std::string key, Value v) {
    obj.emplace_back(std::move(key), std::move(v));
    return obj.back().second;
  }
  void push(Value v) { arr.push_back(std::move(v)); }
  bool scalar() const { return kind != Kind::kArray && kind != Kind::kObject; }
};

std::string json_escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += fmt::format("\\u{:04x}", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out;
}

std::string number(double d) {
  if (!std::isfinite(d)) return "null";  // JSON has no NaN / inf
  return fmt::format("{}", d);
}

void to_json(const Value& v, std::string& out) {
  switch (v.kind) {
    case Value::Kind::kNull:
      out += "null";
      break;
    case Value::Kind::kBool:
      out += v.b ? "true" : "false";
      break;
    case Value::Kind::kInt:
      out += std::to_string(v.i);
      break;
    case Value::Kind::kNumber:
      out += number(v.d);
      break;
    case Value::Kind::kString:
      out += "\"" + json_escape(v.s) + "\"";
      break;
    case Value::Kind::kArray:
      out += "[";
      for (size_t k = 0; k < v.arr.size(); ++k) {
        if (k) out += ",";
        to_json(v.arr[k], out);
      }
      out += "]";
      break;
    case Value::Kind::kObject:
      out += "{";
      for (size_t k = 0; k < v.obj.size(); ++k) {
        if (k) out += ",";
        out += "\"" + json_escape(v.obj[k].first) + "\":";
        to_json(v.obj[k].second, out);
      }
      out += "}";
      break;
  }
}

std::string scalar_text(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kNull:
      return "-";
    case Value::Kind::kBool:
      return v.b ? "yes" : "no";
    case Value::Kind::kInt:
      return std::to_string(v.i);
    case Value::Kind::kNumber:
      return fmt::format("{:.6g}", v.d);
    case Value::Kind::kString:
      return v.s;
    default:
      return "";
  }
}

/// Human form: "key: value" lines, nested objects indented, arrays of scalars on one line (the
/// first 16 and a count), arrays of objects one "- k=v, k=v" line each, multi-line text indented.
void to_text(const Value& v, int indent, std::string& out) {
  const std::string pad(static_cast<size_t>(indent), ' ');
  for (const auto& [key, x] : v.obj) {
    if (x.kind == Value::Kind::kString && x.s.find('\n') != std::string::npos) {
      out += pad + key + ":\n";
      size_t from = 0;
      while (from < x.s.size()) {
        size_t nl = x.s.find('\n', from);
        if (nl == std::string::npos) nl = x.s.size();
        out += pad + "  | " + x.s.substr(from, nl - from) + "\n";
        from = nl + 1;
      }
    } else if (x.scalar()) {
      out += pad + key + ": " + scalar_text(x) + "\n";
    } else if (x.kind == Value::Kind::kObject) {
      out += pad + key + ":\n";
      to_text(x, indent + 2, out);
    } else if (std::all_of(x.arr.begin(), x.arr.end(), [](const Value& e) { return e.scalar(); })) {
      std::string line;
      const size_t shown = std::min<size_t>(x.arr.size(), 16);
      for (size_t k = 0; k < shown; ++k) line += (k ? ", " : "") + scalar_text(x.arr[k]);
      if (shown < x.arr.size()) line += fmt::format(", ... ({} in all)", x.arr.size());
      out += pad + key + ": [" + line + "]\n";
    } else {
      out += pad + key + fmt::format(" ({}):\n", x.arr.size());
      for (const auto& e : x.arr) {
        std::string line;
        for (const auto& [k, f] : e.obj)
          line += (line.empty() ? "" : ", ") + k + "=" + scalar_text(f);
        out += pad + "  - " + line + "\n";
      }
    }
  }
}

std::string iso_utc(int64_t unix_ns) {
  const std::time_t secs = static_cast<std::time_t>(unix_ns / 1'000'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Value unit_rows(const std::vector<core::UnitKey>& units) {
  Value rows = Value::array();
  for (size_t r = 0; r < units.size(); ++r) {
    Value u = Value::object();
    u.add("row", static_cast<int64_t>(r));
    u.add("channel", units[r].channel);
    u.add("unit", static_cast<uint32_t>(units[r].unit));
    rows.push(std::move(u));
  }
  return rows;
}

Value floats(const std::vector<float>& v) {
  Value a = Value::array();
  for (float x : v) a.push(static_cast<double>(x));
  return a;
}

// ---- checkpoint ------------------------------------------------------------------------------

/// Keys whose values are weight arrays: summarised by their length, not printed.
bool is_weight_key(const std::string& k) {
  static const std::array<const char*, 7> kWeights{"weights", "bias",   "a",     "gain",
                                                   "h",       "mean_z", "mean_x"};
  return std::any_of(kWeights.begin(), kWeights.end(), [&](const char* w) { return k == w; });
}

Value inspect_checkpoint(const std::string& path) {
  const models::CheckpointFile ck = models::CheckpointFile::read(path);
  Value v = Value::object();
  v.add("file", path);
  v.add("kind", "checkpoint");
  v.add("decoder", ck.kind);
  v.add("kind_version", ck.kind_version);
  v.add("payload_bytes", static_cast<uint64_t>(ck.payload.size()));
  const auto get = [&](auto fn, const char* key) -> Value {
    if (!ck.meta.count(key)) return Value();
    try {
      return fn(key);
    } catch (const std::exception& e) {
      return Value(std::string("invalid: ") + e.what());
    }
  };
  v.add("chunk_width_ms",
        get([&](const char* k) { return Value(static_cast<double>(ck.get_int(k)) / 1e6); },
            "width_ns"));
  v.add("output_dim", get([&](const char* k) { return Value(ck.get_int(k)); }, "output_dim"));
  v.add("output_names", get(
                            [&](const char* k) {
                              Value a = Value::array();
                              for (auto& s : ck.get_strings(k)) a.push(s);
                              return a;
                            },
                            "output_names"));
  Value config = Value::object();
  Value other = Value::object();
  for (const auto& [k, val] : ck.meta) {
    if (k.rfind("config.", 0) == 0) {
      config.add(k.substr(7), val);
    } else if (k == "units" || k == "width_ns" || k == "output_dim" || k == "output_names" ||
               k == "target_mean" || k == "target_std") {
      continue;
    } else if (is_weight_key(k)) {
      other.add(k, fmt::format("({} bytes of weights)", val.size()));
    } else {
      other.add(k, val);  // training figures, sessions, anything a newer writer added
    }
  }
  if (!config.obj.empty()) v.add("config", std::move(config));
  Value norm = Value::object();
  norm.add("target_mean",
           get([&](const char* k) { return floats(ck.get_floats(k)); }, "target_mean"));
  norm.add("target_std",
           get([&](const char* k) { return floats(ck.get_floats(k)); }, "target_std"));
  v.add("normalisation", std::move(norm));
  if (!other.obj.empty()) v.add("metadata", std::move(other));
  Value units = get([&](const char* k) { return unit_rows(ck.get_units(k)); }, "units");
  v.add("units",
        units.kind == Value::Kind::kArray ? static_cast<uint64_t>(units.arr.size()) : Value());
  v.add("unit_map", std::move(units));
  return v;
}

// ---- session ---------------------------------------------------------------------------------

Value inspect_session(const std::string& path, bool nwb) {
  replay::Session s;
  std::string note;
  if (nwb) {
    try {
      s = replay::read_nwb_session(path);
    } catch (const std::exception& e) {
      // No behaviour under the default name (e.g. `spikeflow export` without --session): read
      // spikes and trials only, and say why.
      replay::NwbReadOptions o;
      o.behavior_name.clear();
      s = replay::read_nwb_session(path, o);
      note = std::string("behaviour not read: ") + e.what();
    }
  } else {
    s = replay::load_session(path);
  }
  Value v = Value::object();
  v.add("file", path);
  v.add("kind", "session");
  v.add("format", nwb ? "nwb" : "spikeflow or MAT");
  const double dur = static_cast<double>(s.end_ns - s.start_ns) / 1e9;
  v.add("start_s", static_cast<double>(s.start_ns) / 1e9);
  v.add("duration_s", dur);
  v.add("units", static_cast<uint64_t>(s.num_units()));
  v.add("spikes", static_cast<uint64_t>(s.num_spikes()));
  v.add("mean_rate_hz", dur > 0 && s.num_units() > 0 ? static_cast<double>(s.num_spikes()) / dur /
                                                           static_cast<double>(s.num_units())
                                                     : 0.0);
  Value trials = Value::object();
  trials.add("count", static_cast<uint64_t>(s.trials.size()));
  std::map<int32_t, int64_t> conds;
  for (const auto& t : s.trials) ++conds[t.condition];
  Value c = Value::array();
  for (const auto& [cond, n] : conds) {
    Value e = Value::object();
    e.add("condition", static_cast<int64_t>(cond));
    e.add("trials", n);
    c.push(std::move(e));
  }
  trials.add("conditions", std::move(c));
  v.add("trials", std::move(trials));
  Value beh = Value::object();
  Value names = Value::array();
  for (const auto& n : s.behavior_names) names.push(n);
  beh.add("channels", std::move(names));
  beh.add("samples", static_cast<uint64_t>(s.behavior_t_ns.size()));
  if (s.behavior_t_ns.size() > 1) {
    beh.add("rate_hz", static_cast<double>(s.behavior_t_ns.size() - 1) * 1e9 /
                           static_cast<double>(s.behavior_t_ns.back() - s.behavior_t_ns.front()));
  }
  v.add("behaviour", std::move(beh));
  if (!note.empty()) v.add("note", note);
  Value units = Value::array();
  for (size_t u = 0; u < s.num_units(); ++u) {
    Value e = Value::object();
    e.add("row", static_cast<uint64_t>(u));
    e.add("channel", s.units[u].channel);
    e.add("unit", static_cast<uint32_t>(s.units[u].unit));
    e.add("spikes", static_cast<uint64_t>(s.spike_times_ns[u].size()));
    e.add("rate_hz", dur > 0 ? static_cast<double>(s.spike_times_ns[u].size()) / dur : 0.0);
    units.push(std::move(e));
  }
  v.add("unit_list", std::move(units));
  return v;
}

// ---- recording -------------------------------------------------------------------------------

Value inspect_recording(const std::string& path) {
  const replay::Recording r = replay::read_recording(path);
  Value v = Value::object();
  v.add("file", path);
  v.add("kind", "recording");
  v.add("version", r.version);
  v.add("created_utc", iso_utc(r.created_unix_ns));
  v.add("model", r.model);
  v.add("model_identity", r.model_identity);
  v.add("units", static_cast<uint64_t>(r.units.size()));
  uint64_t events = 0, ticks = 0;
  int64_t t_min = INT64_MAX, t_max = INT64_MIN;
  for (const auto& b : r.batches) {
    if (b.events.empty() && b.device_time_ns == -2)
      ++ticks;  // deadline-tick marker (RECORDING_FORMAT.md)
    events += b.events.size();
    for (const auto& e : b.events) {
      t_min = std::min(t_min, e.t_ns);
      t_max = std::max(t_max, e.t_ns);
    }
  }
  v.add("packets", static_cast<uint64_t>(r.batches.size() - ticks));
  v.add("deadline_ticks", ticks);
  v.add("events", events);
  v.add("predictions", static_cast<uint64_t>(r.predictions.size()));
  v.add("events_span_s", events > 0 ? Value(static_cast<double>(t_max - t_min) / 1e9) : Value());
  if (!r.predictions.empty()) {
    v.add("predictions_span_s",
          static_cast<double>(r.predictions.back().end_ns - r.predictions.front().start_ns) / 1e9);
  }
  Value end = Value::object();
  end.add("clean_end", r.clean_end);
  end.add("truncated", r.truncated);
  end.add("corrupt", r.corrupt);
  end.add("bytes_read", r.bytes_read);
  end.add("bytes_lost", r.bytes_lost);
  end.add("unknown_records", r.unknown_records);
  if (r.clean_end) end.add("records_dropped_live", r.end_counters.records_dropped);
  if (!r.problem.empty()) end.add("problem", r.problem);
  v.add("integrity", std::move(end));
  v.add("config", r.config);
  v.add("unit_map", unit_rows(r.units));
  return v;
}

enum class FileKind { kCheckpoint, kSession, kNwb, kRecording };

FileKind detect(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::array<char, 8> head{};
  in.read(head.data(), head.size());
  const std::string h(head.data(), static_cast<size_t>(in.gcount()));
  if (h == std::string("SPKFLWCK", 8)) return FileKind::kCheckpoint;
  if (h == std::string("SFREC\0\0\1", 8)) return FileKind::kRecording;
  if (h == std::string("SFSESS\0\1", 8)) return FileKind::kSession;
  if (h == std::string("\x89HDF\r\n\x1a\n", 8)) return FileKind::kNwb;
  if (h.rfind("MATLAB", 0) == 0) return FileKind::kSession;  // v5 header text or v7.3 user block
  throw std::runtime_error(path +
                           ": not a spikeflow checkpoint, session (.sfs, .mat, .nwb) or recording "
                           "(unknown magic bytes)");
}

}  // namespace

Command add_inspect(CLI::App& app) {
  auto file = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  app.add_option("file", *file, "checkpoint, session (.sfs, .mat, .nwb) or recording")->required();
  app.add_flag("--json", *json, "one JSON object instead of text");
  return [file, json] {
    Value v;
    switch (detect(*file)) {
      case FileKind::kCheckpoint:
        v = inspect_checkpoint(*file);
        break;
      case FileKind::kRecording:
        v = inspect_recording(*file);
        break;
      case FileKind::kSession:
        v = inspect_session(*file, false);
        break;
      case FileKind::kNwb:
        v = inspect_session(*file, true);
        break;
    }
    std::string out;
    if (*json) {
      to_json(v, out);
      out += "\n";
    } else {
      to_text(v, 0, out);
    }
    fmt::print("{}", out);
    return 0;
  };
}

}  // namespace spikeflow::cli
