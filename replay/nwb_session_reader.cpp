#include "replay/nwb_session_reader.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>
#include <utility>

#include "core/file_check.h"
#include "core/unit_map.h"
#include "replay/hdf5_quiet.h"
#include "replay/nwb_file.h"

namespace spikeflow::replay {
namespace {

constexpr double kMaxAbsSeconds = 9.0e9;  // |t| * 1e9 must fit an int64 (9.22e18 ns)

int64_t to_ns(double seconds) { return static_cast<int64_t>(std::llround(seconds * 1e9)); }

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + v[i];
  return s;
}

// Ragged-array index check: exclusive end offsets, non-decreasing, ending exactly at `data_len`.
void check_ragged_index(const NwbFile& f, const std::string& index_path,
                        const std::vector<int64_t>& index, size_t data_len,
                        const std::string& data_path) {
  for (size_t i = 0; i < index.size(); ++i) {
    const int64_t prev = i == 0 ? 0 : index[i - 1];
    if (index[i] < prev) {
      f.fail(index_path, "not monotonic: entry " + std::to_string(i) + " is " +
                             std::to_string(index[i]) + ", after " + std::to_string(prev));
    }
    if (static_cast<uint64_t>(index[i]) > data_len) {
      f.fail(index_path, "entry " + std::to_string(i) + " (" + std::to_string(index[i]) +
                             ") is past the end of " + data_path + " (" + std::to_string(data_len) +
                             " values)");
    }
  }
  const size_t last = index.empty() ? 0 : static_cast<size_t>(index.back());
  if (last != data_len) {
    f.fail(index_path, "ends at " + std::to_string(last) + " but " + data_path + " has " +
                           std::to_string(data_len) + " values");
  }
}

void read_units(const NwbFile& f, Session& s, NwbReadStats& st) {
  const std::string times_path = "/units/spike_times";
  const std::string index_path = "/units/spike_times_index";
  const std::string id_path = "/units/id";
  const auto ids = f.read_ints(id_path, 1);
  const auto times = f.read_doubles(times_path, 1);
  const auto index = f.read_ints(index_path, 1);
  if (index.size() != ids.size()) {
    f.fail(index_path, "has " + std::to_string(index.size()) + " entries but " + id_path + " has " +
                           std::to_string(ids.size()) + " units");
  }
  check_ragged_index(f, index_path, index, times.size(), times_path);

  // Channel per unit: the electrodes-table row (first one for a ragged region), else the id.
  std::vector<int64_t> channel = ids;
  const std::string el_path = "/units/electrodes";
  if (f.exists(el_path)) {
    st.channels_from_electrodes = true;
    const auto rows = f.read_ints(el_path, 1);
    const std::string el_index_path = "/units/electrodes_index";
    if (f.exists(el_index_path)) {
      const auto el_index = f.read_ints(el_index_path, 1);
      if (el_index.size() != ids.size()) {
        f.fail(el_index_path, "has " + std::to_string(el_index.size()) + " entries but " + id_path +
                                  " has " + std::to_string(ids.size()) + " units");
      }
      check_ragged_index(f, el_index_path, el_index, rows.size(), el_path);
      for (size_t u = 0; u < ids.size(); ++u) {
        const int64_t b = u == 0 ? 0 : el_index[u - 1];
        if (el_index[u] == b)
          f.fail(el_index_path, "unit " + std::to_string(u) + " has no electrode");
        channel[u] = rows[static_cast<size_t>(b)];
      }
    } else {
      if (rows.size() != ids.size()) {
        f.fail(el_path, "has " + std::to_string(rows.size()) + " entries but " + id_path + " has " +
                            std::to_string(ids.size()) + " units");
      }
      channel = rows;
    }
    const std::string table_id = "/general/extracellular_ephys/electrodes/id";
    const int64_t table_rows =
        f.exists(table_id) ? static_cast<int64_t>(f.read_ints(table_id, 1).size()) : -1;
    for (size_t u = 0; u < channel.size(); ++u) {
      if (channel[u] < 0 || (table_rows >= 0 && channel[u] >= table_rows)) {
        f.fail(el_path, "unit " + std::to_string(u) + " names electrode row " +
                            std::to_string(channel[u]) + ", outside the electrodes table (" +
                            std::to_string(table_rows) + " rows)");
      }
    }
  }

  std::map<int64_t, int> per_channel;
  s.units.resize(ids.size());
  s.spike_times_ns.resize(ids.size());
  for (size_t u = 0; u < ids.size(); ++u) {
    const std::string what = st.channels_from_electrodes ? el_path : id_path;
    if (channel[u] < 0 || channel[u] > static_cast<int64_t>(core::UnitMap::kMaxChannel)) {
      f.fail(what, "unit " + std::to_string(u) + ": channel " + std::to_string(channel[u]) +
                       " outside [0, " + std::to_string(core::UnitMap::kMaxChannel) + "]");
    }
    const int code = ++per_channel[channel[u]];
    if (code > core::UnitMap::kMaxUnitCode) {
      f.fail(what, "more than " + std::to_string(core::UnitMap::kMaxUnitCode) +
                       " units on channel " + std::to_string(channel[u]));
    }
    s.units[u] = {static_cast<uint32_t>(channel[u]), static_cast<uint16_t>(code)};

    const auto b = static_cast<size_t>(u == 0 ? 0 : index[u - 1]);
    const auto e = static_cast<size_t>(index[u]);
    auto& out = s.spike_times_ns[u];
    out.reserve(e - b);
    for (size_t j = b; j < e; ++j) {
      if (!std::isfinite(times[j]) || std::abs(times[j]) > kMaxAbsSeconds) {
        f.fail(times_path, "unit " + std::to_string(u) + " (id " + std::to_string(ids[u]) +
                               ") has a non-finite or out-of-range spike time at index " +
                               std::to_string(j));
      }
      out.push_back(to_ns(times[j]));
    }
    if (!std::is_sorted(out.begin(), out.end())) {
      std::sort(out.begin(), out.end());
      ++st.units_resorted;
    }
    if (out.empty()) ++st.empty_units;
    st.spikes += out.size();
  }
  st.units = ids.size();
}

std::vector<std::string> column_names(const NwbReadOptions& o, size_t dim, const NwbFile& f,
                                      const std::string& data_path) {
  if (!o.behavior_names.empty()) {
    if (o.behavior_names.size() != dim) {
      f.fail(data_path, "has " + std::to_string(dim) + " columns but " +
                            std::to_string(o.behavior_names.size()) +
                            " behaviour names were given");
    }
    return o.behavior_names;
  }
  if (dim == 2) return {"vx", "vy"};
  if (dim == 3) return {"vx", "vy", "vz"};
  if (dim == 1) {
    const size_t slash = o.behavior_name.rfind('/');
    return {slash == std::string::npos ? o.behavior_name : o.behavior_name.substr(slash + 1)};
  }
  std::vector<std::string> names;
  const size_t slash = o.behavior_name.rfind('/');
  const std::string base =
      slash == std::string::npos ? o.behavior_name : o.behavior_name.substr(slash + 1);
  for (size_t d = 0; d < dim; ++d) names.push_back(base + "_" + std::to_string(d));
  return names;
}

/// "path (neurodata_type)" of each series, for messages.
std::string describe_series(const NwbFile& f, const std::string& root,
                            const std::vector<std::string>& series) {
  std::vector<std::string> d;
  for (const auto& rel : series) {
    const std::string full = root + "/" + rel;
    const std::string type = f.text_attribute(full, "neurodata_type");
    d.push_back(full + (type.empty() ? "" : " (" + type + ")"));
  }
  return d.empty() ? std::string("none") : join(d);
}

/// The HDF5 path of the behaviour series o.behavior_name names (see NwbReadOptions).
std::string find_behavior_group(const NwbFile& f, const NwbReadOptions& o) {
  std::string module = o.behavior_module;
  while (module.size() > 1 && module.back() == '/') module.pop_back();
  std::string group;
  if (o.behavior_name.front() == '/') {
    group = o.behavior_name;
    while (group.size() > 1 && group.back() == '/') group.pop_back();
    if (!f.is_group(group)) {
      std::vector<std::string> none, series;
      if (f.is_group(module)) f.find_groups(module, "", none, series);
      f.fail(group, "no such behaviour series (series under " + module + ": " +
                        describe_series(f, module, series) + ")");
    }
  } else {
    if (!f.is_group(module)) {
      f.fail(module, "missing behaviour module (looking for TimeSeries '" + o.behavior_name + "')");
    }
    std::vector<std::string> matches;
    std::vector<std::string> series;
    f.find_groups(module, o.behavior_name, matches, series);
    if (matches.empty()) {
      f.fail(module, "no TimeSeries named '" + o.behavior_name +
                         "' (found: " + describe_series(f, module, series) +
                         "; pick one with --behaviour NAME or /hdf5/path)");
    }
    if (matches.size() > 1) {
      f.fail(module, "TimeSeries name '" + o.behavior_name + "' is ambiguous: " + join(matches));
    }
    group = matches[0];
  }
  if (!f.exists(group + "/data")) {
    // A container (Position, BehavioralTimeSeries, ...): its single series stands for it.
    std::vector<std::string> none, series;
    f.find_groups(group, "", none, series);
    if (series.size() != 1) {
      f.fail(group, series.empty() ? "holds no series with data"
                                   : "is a container of " + std::to_string(series.size()) +
                                         " series; pick one: " + describe_series(f, group, series));
    }
    group = group + "/" + series[0];
  }
  return group;
}

/// Replaces the T x D position samples in s.behavior by their causal velocity (NwbReadOptions).
void derive_velocity(Session& s, size_t dim, double smoothing_ms) {
  const size_t n = s.behavior_t_ns.size();
  std::vector<float> v(s.behavior.size(), 0.0f);
  std::vector<double> y(dim, 0.0);
  const double tau_s = smoothing_ms / 1e3;
  for (size_t i = 1; i < n; ++i) {
    const double dt =
        static_cast<double>(s.behavior_t_ns[i] - s.behavior_t_ns[i - 1]) / 1e9;  // > 0: checked
    const double a = tau_s > 0 ? 1.0 - std::exp(-dt / tau_s) : 1.0;
    for (size_t d = 0; d < dim; ++d) {
      const double raw =
          (static_cast<double>(s.behavior[i * dim + d]) - s.behavior[(i - 1) * dim + d]) / dt;
      y[d] += a * (raw - y[d]);
      v[i * dim + d] = static_cast<float>(y[d]);
    }
  }
  s.behavior = std::move(v);
}

void read_behavior(const NwbFile& f, const NwbReadOptions& o, Session& s, NwbReadStats& st) {
  if (o.behavior_name.empty()) return;
  const std::string group = find_behavior_group(f, o);
  const std::string data_path = group + "/data";

  Hid ds = f.open_dataset(data_path);
  const auto shape = f.shape(ds, data_path);
  if (shape.size() != 1 && shape.size() != 2) {
    f.fail(data_path, "expected shape (T) or (T x D), found " + NwbFile::shape_text(shape));
  }
  std::vector<hsize_t> dims;
  const auto raw = f.read_doubles(data_path, static_cast<int>(shape.size()), &dims);
  const auto n = static_cast<size_t>(dims[0]);
  const size_t dim = dims.size() == 2 ? static_cast<size_t>(dims[1]) : 1;
  if (n == 0 || dim == 0) f.fail(data_path, "is empty " + NwbFile::shape_text(dims));
  const double conversion = f.attribute(data_path, "conversion", 1.0);
  const double offset = f.attribute(data_path, "offset", 0.0);
  if (!std::isfinite(conversion) || !std::isfinite(offset)) {
    f.fail(data_path, "non-finite 'conversion' or 'offset' attribute");
  }

  s.behavior.resize(raw.size());
  size_t bad = 0;
  size_t first_bad = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    const auto v = static_cast<float>(raw[i] * conversion + offset);
    if (!std::isfinite(v) && bad++ == 0) first_bad = i;
    s.behavior[i] = v;
  }
  if (bad > 0) {
    f.fail(data_path, std::to_string(bad) + " NaN/inf value" + (bad == 1 ? "" : "s") +
                          " (first at sample " + std::to_string(first_bad / dim) + ", column " +
                          std::to_string(first_bad % dim) + ")");
  }
  s.behavior_names = column_names(o, dim, f, data_path);

  const std::string ts_path = group + "/timestamps";
  const std::string start_path = group + "/starting_time";
  s.behavior_t_ns.resize(n);
  if (f.exists(ts_path)) {
    const auto ts = f.read_doubles(ts_path, 1);
    if (ts.size() != n) {
      f.fail(ts_path, "has " + std::to_string(ts.size()) + " values but " + data_path + " has " +
                          std::to_string(n) + " samples");
    }
    for (size_t i = 0; i < n; ++i) {
      if (!std::isfinite(ts[i]) || std::abs(ts[i]) > kMaxAbsSeconds) {
        f.fail(ts_path, "non-finite or out-of-range timestamp at index " + std::to_string(i));
      }
      s.behavior_t_ns[i] = to_ns(ts[i]);
      if (i > 0 && s.behavior_t_ns[i] <= s.behavior_t_ns[i - 1]) {
        f.fail(ts_path, "timestamps not strictly increasing at index " + std::to_string(i) + " (" +
                            std::to_string(ts[i]) + " s after " + std::to_string(ts[i - 1]) +
                            " s)");
      }
    }
  } else if (f.exists(start_path)) {
    const double t0 = f.read_scalar(start_path);
    const double rate = f.attribute(start_path, "rate", 0.0, /*required=*/true);
    if (!std::isfinite(t0) || !(rate > 0.0) || !std::isfinite(rate)) {
      f.fail(start_path, "needs a finite starting_time and a positive 'rate' attribute");
    }
    if (std::abs(t0) + static_cast<double>(n) / rate > kMaxAbsSeconds) {
      f.fail(start_path, "sample times out of range");
    }
    for (size_t i = 0; i < n; ++i) s.behavior_t_ns[i] = to_ns(t0 + static_cast<double>(i) / rate);
    for (size_t i = 1; i < n; ++i) {
      if (s.behavior_t_ns[i] <= s.behavior_t_ns[i - 1]) {
        f.fail(start_path, "'rate' " + std::to_string(rate) +
                               " Hz is too high for ns sample times (samples collide)");
      }
    }
  } else {
    f.fail(group, "TimeSeries has neither 'timestamps' nor 'starting_time'");
  }
  st.behavior_samples = n;
  st.behavior_path = group;
  const bool spatial = f.text_attribute(group, "neurodata_type") == "SpatialSeries";
  if (o.derive_velocity) {
    if (!(o.velocity_smoothing_ms >= 0.0) || !std::isfinite(o.velocity_smoothing_ms)) {
      f.fail(group, "velocity smoothing must be a finite number of ms >= 0");
    }
    derive_velocity(s, dim, o.velocity_smoothing_ms);
    st.behavior_derived = true;
  } else if (spatial && o.behavior_names.empty() && dim >= 2 && dim <= 3) {
    s.behavior_names =
        dim == 2 ? std::vector<std::string>{"x", "y"} : std::vector<std::string>{"x", "y", "z"};
  }
}

/// start_time / stop_time of a TimeIntervals table (trials, epochs), checked, as device ns.
std::vector<std::pair<int64_t, int64_t>> read_intervals(const NwbFile& f,
                                                        const std::string& table) {
  const std::string start_path = table + "/start_time";
  const std::string stop_path = table + "/stop_time";
  const auto start = f.read_doubles(start_path, 1);
  const auto stop = f.read_doubles(stop_path, 1);
  if (stop.size() != start.size()) {
    f.fail(stop_path, "has " + std::to_string(stop.size()) + " values but " + start_path + " has " +
                          std::to_string(start.size()));
  }
  std::vector<std::pair<int64_t, int64_t>> out(start.size());
  for (size_t k = 0; k < start.size(); ++k) {
    for (const auto& [v, p] : {std::pair{start[k], &start_path}, std::pair{stop[k], &stop_path}}) {
      if (!std::isfinite(v) || std::abs(v) > kMaxAbsSeconds) {
        f.fail(*p, "non-finite or out-of-range time at row " + std::to_string(k));
      }
    }
    out[k] = {to_ns(start[k]), to_ns(stop[k])};
  }
  return out;
}

void read_trials(const NwbFile& f, const NwbReadOptions& o, Session& s, NwbReadStats& st) {
  if (o.trials_table.empty() || !f.is_group(o.trials_table)) {
    if (!o.condition_column.empty()) {
      f.fail(o.trials_table,
             "missing trials table (condition column '" + o.condition_column + "' was asked for)");
    }
    return;
  }
  const auto times = read_intervals(f, o.trials_table);
  std::vector<double> cond;
  const std::string cond_path = o.trials_table + "/" + o.condition_column;
  if (!o.condition_column.empty()) {
    cond = f.read_doubles(cond_path, 1);
    if (cond.size() != times.size()) {
      f.fail(cond_path, "has " + std::to_string(cond.size()) + " values but there are " +
                            std::to_string(times.size()) + " trials");
    }
  }
  s.trials.resize(times.size());
  for (size_t k = 0; k < times.size(); ++k) {
    Trial& t = s.trials[k];
    t.start_ns = times[k].first;
    t.end_ns = times[k].second;
    if (!cond.empty()) {
      if (!std::isfinite(cond[k]) || std::abs(cond[k]) > std::numeric_limits<int32_t>::max()) {
        f.fail(cond_path, "condition of trial " + std::to_string(k) + " is not a finite int32");
      }
      t.condition = static_cast<int32_t>(std::llround(cond[k]));
    }
  }
  st.trials = s.trials.size();
}

/// The epochs table's rows (empty when the file has none): they widen the session's extent.
std::vector<std::pair<int64_t, int64_t>> read_epochs(const NwbFile& f, const NwbReadOptions& o,
                                                     NwbReadStats& st) {
  if (o.epochs_table.empty() || !f.is_group(o.epochs_table)) return {};
  auto epochs = read_intervals(f, o.epochs_table);
  st.epochs = epochs.size();
  return epochs;
}

void set_extent(Session& s, const std::vector<std::pair<int64_t, int64_t>>& epochs) {
  int64_t lo = INT64_MAX;
  int64_t hi = INT64_MIN;
  auto see = [&](int64_t first, int64_t last_exclusive) {
    lo = std::min(lo, first);
    hi = std::max(hi, last_exclusive);
  };
  for (const auto& t : s.spike_times_ns) {
    if (!t.empty()) see(t.front(), t.back() + 1);
  }
  if (!s.behavior_t_ns.empty()) see(s.behavior_t_ns.front(), s.behavior_t_ns.back() + 1);
  for (const auto& t : s.trials)
    see(std::min(t.start_ns, t.end_ns), std::max(t.start_ns, t.end_ns));
  for (const auto& [start, stop] : epochs) see(std::min(start, stop), std::max(start, stop));
  s.start_ns = lo <= hi ? lo : 0;
  s.end_ns = lo <= hi ? hi : 0;
}

/// NWB 1.x keeps its version in a root dataset /nwb_version ("NWB-1.0.x"); 2.x in a root
/// attribute (nwb-schema core/nwb.file.yaml: NWBFile attribute nwb_version, "2.x.y").
void check_nwb_version(const NwbFile& f) {
  std::string v1;
  if (f.exists("/nwb_version") && !f.is_group("/nwb_version")) v1 = f.text_dataset("/nwb_version");
  const std::string attr = f.text_attribute("/", "nwb_version");
  if (v1.empty() && attr.rfind("1.", 0) == 0) v1 = attr;
  if (v1.empty() && f.exists("/nwb_version")) v1 = "/nwb_version present";
  if (!v1.empty()) {
    throw std::runtime_error(
        f.path() + ": NWB 1.x is not supported (nwb_version '" + v1 +
        "'); spikeflow reads NWB 2.x (convert the file with pynwb / nwb-conversion-tools)");
  }
}

}  // namespace

Session read_nwb_session(const std::string& path, const NwbReadOptions& opts, NwbReadStats* stats) {
  return core::as_input_file_error([&] {
    const SilenceHdf5Errors quiet;
    const NwbFile f(path);
    check_nwb_version(f);
    Session s;
    NwbReadStats st;
    read_units(f, s, st);
    read_behavior(f, opts, s, st);
    read_trials(f, opts, s, st);
    set_extent(s, read_epochs(f, opts, st));
    s.validate(path + " (NWB)");
    if (stats) *stats = st;
    return s;
  });
}

}  // namespace spikeflow::replay
