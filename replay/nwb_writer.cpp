// NWB export of a recording: see nwb_writer.h for the layout. Attribute conventions follow what
// pynwb (through hdmf's HDF5IO) writes: strings are variable-length UTF-8, scalar attributes are
// scalar dataspaces, `colnames` is a 1-D array of strings, VectorIndex.target and
// DynamicTableRegion.table are object references, links are soft links.
#include "replay/nwb_writer.h"

#include <hdf5.h>

#include "replay/hdf5_quiet.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <ctime>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <utility>

namespace spikeflow::replay {

namespace {

constexpr char kNwbVersion[] = "2.7.0";

std::string uuid4() {
  static thread_local std::mt19937_64 rng{
      std::random_device{}() ^
      static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count())};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & ~uint64_t{0xF000}) | 0x4000;                      // version 4
  lo = (lo & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);  // variant 10xx
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

/// ISO 8601 with microseconds and a UTC offset, as pynwb writes datetimes.
std::string iso8601_utc(int64_t unix_ns) {
  const std::time_t secs = static_cast<std::time_t>(unix_ns >= 0 ? unix_ns / 1'000'000'000 : 0);
  const int64_t micros = unix_ns >= 0 ? (unix_ns % 1'000'000'000) / 1000 : 0;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s.%06lld+00:00", date, static_cast<long long>(micros));
  return buf;
}

double seconds(int64_t t_ns) { return static_cast<double>(t_ns) / 1e9; }

/// RAII over one hid_t and its close function.
class Handle {
 public:
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  ~Handle() {
    if (id_ >= 0) close_(id_);
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  hid_t get() const { return id_; }

 private:
  hid_t id_;
  herr_t (*close_)(hid_t);
};

/// One output file; every call writes one object and throws "<file>: <object>: <problem>".
class Writer {
 public:
  explicit Writer(std::string path)
      : path_(std::move(path)),
        file_(H5Fcreate(path_.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose),
        str_(H5Tcopy(H5T_C_S1), H5Tclose) {
    if (file_.get() < 0) throw std::runtime_error(path_ + ": cannot create the file");
    H5Tset_size(str_.get(), H5T_VARIABLE);
    H5Tset_cset(str_.get(), H5T_CSET_UTF8);
  }

  [[noreturn]] void fail(const std::string& object, const std::string& problem) const {
    throw std::runtime_error(path_ + ": " + object + ": " + problem);
  }

  void group(const std::string& path) {
    Handle g(H5Gcreate2(file_.get(), path.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
             H5Gclose);
    if (g.get() < 0) fail(path, "cannot create group");
  }
  /// A group with neurodata_type, namespace and object_id.
  void typed_group(const std::string& path, const std::string& type,
                   const std::string& ns = "core") {
    if (path != "/") group(path);
    typed(path, type, ns);
  }
  void typed(const std::string& path, const std::string& type, const std::string& ns) {
    attr(path, "namespace", ns);
    attr(path, "neurodata_type", type);
    attr(path, "object_id", uuid4());
  }

  void attr(const std::string& obj, const std::string& name, const std::string& value) {
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle a(H5Acreate_by_name(file_.get(), obj.c_str(), name.c_str(), str_.get(), space.get(),
                               H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
             H5Aclose);
    const char* p = value.c_str();
    if (a.get() < 0 || H5Awrite(a.get(), str_.get(), &p) < 0)
      fail(obj, "cannot write attribute " + name);
  }
  void attr(const std::string& obj, const std::string& name, double value) {
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle a(H5Acreate_by_name(file_.get(), obj.c_str(), name.c_str(), H5T_IEEE_F64LE, space.get(),
                               H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
             H5Aclose);
    if (a.get() < 0 || H5Awrite(a.get(), H5T_NATIVE_DOUBLE, &value) < 0)
      fail(obj, "cannot write attribute " + name);
  }
  void attr(const std::string& obj, const std::string& name,
            const std::vector<std::string>& values) {
    const hsize_t n = values.size();
    Handle space(H5Screate_simple(1, &n, nullptr), H5Sclose);
    Handle a(H5Acreate_by_name(file_.get(), obj.c_str(), name.c_str(), str_.get(), space.get(),
                               H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
             H5Aclose);
    std::vector<const char*> p;
    for (const auto& v : values) p.push_back(v.c_str());
    if (a.get() < 0 || (n > 0 && H5Awrite(a.get(), str_.get(), p.data()) < 0)) {
      fail(obj, "cannot write attribute " + name);
    }
  }
  /// An object-reference attribute pointing at `target` (VectorIndex.target,
  /// DynamicTableRegion.table).
  void ref_attr(const std::string& obj, const std::string& name, const std::string& target) {
    hobj_ref_t ref{};
    if (H5Rcreate(&ref, file_.get(), target.c_str(), H5R_OBJECT, -1) < 0)
      fail(target, "cannot reference");
    Handle space(H5Screate(H5S_SCALAR), H5Sclose);
    Handle a(H5Acreate_by_name(file_.get(), obj.c_str(), name.c_str(), H5T_STD_REF_OBJ, space.get(),
                               H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
             H5Aclose);
    if (a.get() < 0 || H5Awrite(a.get(), H5T_STD_REF_OBJ, &ref) < 0)
      fail(obj, "cannot write attribute " + name);
  }

  void dataset(const std::string& path, hid_t file_type, hid_t mem_type, const void* data,
               const std::vector<hsize_t>& dims) {
    Handle space(dims.empty()
                     ? H5Screate(H5S_SCALAR)
                     : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                 H5Sclose);
    Handle ds(H5Dcreate2(file_.get(), path.c_str(), file_type, space.get(), H5P_DEFAULT,
                         H5P_DEFAULT, H5P_DEFAULT),
              H5Dclose);
    hsize_t n = 1;
    for (hsize_t d : dims) n *= d;
    if (ds.get() < 0 ||
        (n > 0 && H5Dwrite(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)) {
      fail(path, "cannot write dataset");
    }
  }
  void doubles(const std::string& path, const std::vector<double>& v) {
    dataset(path, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, v.data(), {v.size()});
  }
  void ints(const std::string& path, const std::vector<int64_t>& v) {
    dataset(path, H5T_STD_I64LE, H5T_NATIVE_INT64, v.data(), {v.size()});
  }
  void text(const std::string& path, const std::string& value) {
    const char* p = value.c_str();
    dataset(path, str_.get(), str_.get(), &p, {});
  }
  void texts(const std::string& path, const std::vector<std::string>& values) {
    std::vector<const char*> p;
    for (const auto& v : values) p.push_back(v.c_str());
    dataset(path, str_.get(), str_.get(), p.data(), {values.size()});
  }
  void refs(const std::string& path, const std::string& target, size_t n) {
    hobj_ref_t ref{};
    if (H5Rcreate(&ref, file_.get(), target.c_str(), H5R_OBJECT, -1) < 0)
      fail(target, "cannot reference");
    std::vector<hobj_ref_t> v(n, ref);
    dataset(path, H5T_STD_REF_OBJ, H5T_STD_REF_OBJ, v.data(), {n});
  }
  void soft_link(const std::string& target, const std::string& link) {
    if (H5Lcreate_soft(target.c_str(), file_.get(), link.c_str(), H5P_DEFAULT, H5P_DEFAULT) < 0) {
      fail(link, "cannot create link to " + target);
    }
  }

  /// A VectorData column of a DynamicTable.
  void column_typed(const std::string& path, const std::string& description,
                    const std::string& type = "VectorData") {
    attr(path, "description", description);
    typed(path, type, "hdmf-common");
  }
  /// The `id` column (ElementIdentifiers) 0..n-1 and the table attributes.
  void table(const std::string& path, const std::string& type, const std::string& ns,
             const std::string& description, const std::vector<std::string>& colnames,
             size_t rows) {
    std::vector<int64_t> ids(rows);
    for (size_t i = 0; i < rows; ++i) ids[i] = static_cast<int64_t>(i);
    ints(path + "/id", ids);
    typed(path + "/id", "ElementIdentifiers", "hdmf-common");
    attr(path, "colnames", colnames);
    attr(path, "description", description);
    typed(path, type, ns);
  }

 private:
  std::string path_;
  Handle file_;
  Handle str_;
};

struct KeyLess {
  bool operator()(const core::UnitKey& a, const core::UnitKey& b) const {
    return a.channel != b.channel ? a.channel < b.channel : a.unit < b.unit;
  }
};

/// Per-prediction integer columns; chunk_index and epoch when core::Prediction has them (a
/// template, so that the checks discard the branches for fields the struct lacks).
template <class P>
std::vector<std::pair<std::string, std::vector<int64_t>>> timing_columns(const std::vector<P>& ps) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> cols;
  auto add = [&](const char* name, auto get) {
    std::vector<int64_t> v;
    v.reserve(ps.size());
    for (const P& p : ps) v.push_back(static_cast<int64_t>(get(p)));
    cols.emplace_back(name, std::move(v));
  };
  add("seq", [](const P& p) { return p.seq; });
  if constexpr (requires(const P& p) { p.chunk_index; }) {
    add("chunk_index", [](const auto& p) { return p.chunk_index; });
  }
  if constexpr (requires(const P& p) { p.epoch; }) {
    add("epoch", [](const auto& p) { return p.epoch; });
  }
  add("start_ns", [](const P& p) { return p.start_ns; });
  add("end_ns", [](const P& p) { return p.end_ns; });
  add("flags", [](const P& p) { return p.flags; });
  add("n_tokens", [](const P& p) { return p.n_tokens; });
  add("trigger_arrival_ns", [](const P& p) { return p.timing.trigger_arrival_ns; });
  add("close_ns", [](const P& p) { return p.timing.close_ns; });
  add("tokenize_ns", [](const P& p) { return p.timing.tokenize_ns; });
  add("decode_start_ns", [](const P& p) { return p.timing.decode_start_ns; });
  add("decode_end_ns", [](const P& p) { return p.timing.decode_end_ns; });
  add("publish_ns", [](const P& p) { return p.timing.publish_ns; });
  return cols;
}

std::string column_description(const std::string& name) {
  if (name == "seq") return "publish sequence number";
  if (name == "chunk_index") return "chunk number on the device clock grid (start_ns / width)";
  if (name == "epoch") return "device clock epoch (incremented on a clock jump)";
  if (name == "start_ns" || name == "end_ns") return "chunk bound, device clock, ns";
  if (name == "flags") return "core::ChunkFlag bits";
  if (name == "n_tokens") return "spikes in the chunk";
  return "host clock (CLOCK_MONOTONIC), ns; 0 = not measured";
}

/// [start, stop] of the run on the device clock: start = the first chunk's start (or the first
/// spike when no chunk closed), stop = the latest device time the run saw (a packet's clock or a
/// spike). nullopt for a recording with neither spikes nor predictions.
std::optional<std::pair<int64_t, int64_t>> run_extent(const Recording& rec) {
  int64_t lo = INT64_MAX;
  int64_t hi = INT64_MIN;
  if (!rec.predictions.empty()) {
    for (const auto& p : rec.predictions) lo = std::min(lo, p.start_ns);
  }
  for (const auto& b : rec.batches) {
    if (b.device_time_ns >= 0) hi = std::max(hi, b.device_time_ns);
    for (const auto& e : b.events) {
      lo = std::min(lo, e.t_ns);
      hi = std::max(hi, e.t_ns + 1);  // as the reader's extent: last spike + 1 ns
    }
  }
  if (lo == INT64_MAX || hi == INT64_MIN || hi < lo) return std::nullopt;
  return std::pair{lo, hi};
}

}  // namespace

NwbWriteStats write_nwb_recording(const std::string& path, const Recording& rec,
                                  const Session* session, const NwbWriteOptions& o) {
  NwbWriteStats st;
  if (session &&
      session->behavior.size() != session->behavior_t_ns.size() * session->behavior_names.size()) {
    throw std::runtime_error(path + ": session behaviour has " +
                             std::to_string(session->behavior.size()) +
                             " values, not samples x names");
  }
  // Units: the unit map (model order) first, then keys seen only in events, ascending.
  std::vector<core::UnitKey> units = rec.units;
  std::map<core::UnitKey, size_t, KeyLess> row;
  for (size_t i = 0; i < units.size(); ++i) row.emplace(units[i], i);
  std::map<core::UnitKey, size_t, KeyLess> extra;
  for (const auto& b : rec.batches) {
    for (const auto& e : b.events) {
      const core::UnitKey k{e.channel, e.unit};
      if (!row.count(k)) extra.emplace(k, 0);
    }
  }
  for (auto& [k, _] : extra) {
    row.emplace(k, units.size());
    units.push_back(k);
  }
  st.units = units.size();
  st.unmapped_units = extra.size();
  std::vector<std::vector<int64_t>> spikes(units.size());
  for (const auto& b : rec.batches) {
    for (const auto& e : b.events) spikes[row.at({e.channel, e.unit})].push_back(e.t_ns);
  }
  uint32_t max_channel = 0;
  std::map<uint32_t, uint16_t> per_channel;
  for (const auto& k : units) {
    max_channel = std::max(max_channel, k.channel);
    if (k.unit != ++per_channel[k.channel]) ++st.renumbered_units;
  }
  st.electrodes = units.empty() ? 0 : static_cast<size_t>(max_channel) + 1;

  const SilenceHdf5Errors silence;
  Writer w(path);
  const std::string created = iso8601_utc(rec.created_unix_ns);
  const std::string now = iso8601_utc(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::system_clock::now().time_since_epoch())
                                          .count());
  // Root: NWBFile.
  w.typed_group("/", "NWBFile");
  w.attr("/", "nwb_version", kNwbVersion);
  w.texts("/file_create_date", {now});
  w.text("/identifier", o.identifier.empty() ? uuid4() : o.identifier);
  w.text("/session_description",
         o.session_description.empty() ? "spikeflow live run " + o.source : o.session_description);
  w.text("/session_start_time", created);
  // Device-clock times are seconds since the device's own epoch, not since session_start_time.
  w.text("/timestamps_reference_time", created);
  for (const char* g :
       {"/acquisition", "/analysis", "/processing", "/stimulus", "/stimulus/presentation",
        "/stimulus/templates", "/general", "/general/devices", "/general/extracellular_ephys"}) {
    w.group(g);
  }
  w.text("/general/data_collection", rec.config.empty() ? "(no config recorded)" : rec.config);
  w.text("/general/notes",
         "model: " + rec.model + "\nmodel identity: " + rec.model_identity + "\nexported by " +
             o.software_version + " from " + o.source +
             "\nspike and prediction times: device clock, seconds; per-chunk timing: host clock "
             "(CLOCK_MONOTONIC), ns");
  w.text("/general/source_script", o.software_version);
  w.attr("/general/source_script", "file_name", "spikeflow");

  // Electrodes: one row per device channel number 0..max, all in one group.
  const std::string device = "/general/devices/spikeflow_device";
  w.typed_group(device, "Device");
  w.attr(device, "description", "the recording system that sent spikes to spikeflow");
  const std::string egroup = "/general/extracellular_ephys/channels";
  w.typed_group(egroup, "ElectrodeGroup");
  w.attr(egroup, "description",
         "every channel of the live run; row c of the electrodes table = channel c");
  w.attr(egroup, "location", "unknown");
  w.soft_link(device, egroup + "/device");
  const std::string etable = "/general/extracellular_ephys/electrodes";
  w.group(etable);
  const size_t n_el = st.electrodes;
  w.texts(etable + "/location", std::vector<std::string>(n_el, "unknown"));
  w.column_typed(etable + "/location", "location of the electrode");
  w.refs(etable + "/group", egroup, n_el);
  w.column_typed(etable + "/group", "the ElectrodeGroup of the electrode");
  w.texts(etable + "/group_name", std::vector<std::string>(n_el, "channels"));
  w.column_typed(etable + "/group_name", "name of the ElectrodeGroup");
  w.table(etable, "DynamicTable", "hdmf-common",
          "metadata about extracellular electrodes; row = device channel",
          {"location", "group", "group_name"}, n_el);

  // Units.
  std::vector<double> flat;
  std::vector<int64_t> index, channel, code;
  for (size_t u = 0; u < units.size(); ++u) {
    std::sort(spikes[u].begin(), spikes[u].end());
    for (int64_t t : spikes[u]) flat.push_back(seconds(t));
    index.push_back(static_cast<int64_t>(flat.size()));
    channel.push_back(units[u].channel);
    code.push_back(units[u].unit);
  }
  st.spikes = flat.size();
  w.group("/units");
  w.doubles("/units/spike_times", flat);
  w.column_typed("/units/spike_times", "the spike times for each unit in seconds (device clock)");
  w.attr("/units/spike_times", "resolution", 1e-9);
  w.ints("/units/spike_times_index", index);
  w.column_typed("/units/spike_times_index", "Index for VectorData 'spike_times'", "VectorIndex");
  w.ref_attr("/units/spike_times_index", "target", "/units/spike_times");
  w.ints("/units/electrodes", channel);
  w.column_typed("/units/electrodes",
                 "the device channel of each unit (row of the electrodes table)",
                 "DynamicTableRegion");
  w.ref_attr("/units/electrodes", "table", etable);
  w.ints("/units/unit", code);
  w.column_typed("/units/unit",
                 "sorted-unit code on the channel, as the device numbers it (0 = unsorted)");
  w.table("/units", "Units", "core",
          "spike events of the live run, per (channel, unit); the decoder's unit map first, in "
          "model order",
          {"spike_times", "electrodes", "unit"}, units.size());

  // Predictions and their per-chunk timing.
  const std::string module = "/processing/spikeflow";
  w.typed_group(module, "ProcessingModule");
  w.attr(module, "description",
         "decoder output of the live run (" + rec.model + ", " + rec.model_identity + ")");
  const auto& ps = rec.predictions;
  st.predictions = ps.size();
  int dim = 0;
  for (const auto& p : ps) dim = std::max(dim, p.output_dim);
  std::vector<float> values;
  std::vector<double> stamps;
  for (const auto& p : ps) {
    for (int d = 0; d < dim; ++d)
      values.push_back(d < p.output_dim ? p.values[static_cast<size_t>(d)] : 0.0f);
    stamps.push_back(seconds(p.end_ns));
  }
  const std::string ts = module + "/predictions";
  w.typed_group(ts, "TimeSeries");
  w.attr(ts, "description", "one prediction per chunk; timestamp = chunk end on the device clock");
  w.attr(ts, "comments", "model: " + rec.model + "; identity: " + rec.model_identity);
  w.dataset(ts + "/data", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, values.data(),
            {static_cast<hsize_t>(ps.size()), static_cast<hsize_t>(dim)});
  w.attr(ts + "/data", "conversion", 1.0);
  w.attr(ts + "/data", "offset", 0.0);
  w.attr(ts + "/data", "resolution", -1.0);
  w.attr(ts + "/data", "unit", "decoder output units (as trained, e.g. cm/s)");
  w.doubles(ts + "/timestamps", stamps);
  w.attr(ts + "/timestamps", "interval", 1.0);
  w.attr(ts + "/timestamps", "unit", "seconds");
  const std::string timing = module + "/prediction_timing";
  w.group(timing);
  std::vector<std::string> colnames;
  for (const auto& [name, v] : timing_columns(ps)) {
    w.ints(timing + "/" + name, v);
    w.column_typed(timing + "/" + name, column_description(name));
    colnames.push_back(name);
  }
  w.table(timing, "DynamicTable", "hdmf-common",
          "per-prediction chunk bounds (device clock, ns), flags and stage timing (host clock, "
          "ns); row i = "
          "predictions row i",
          colnames, ps.size());

  // The run's extent as one epoch: where the session the run played starts and stops on the
  // device clock. Spikes alone cannot say it (the run may end in silence, and its last chunk was
  // closed by the device clock, not by a spike), and a reader that replays the file needs it to
  // close the same last chunk (replay/nwb_session_reader.h widens its extent by the epochs).
  const auto extent = run_extent(rec);
  bool has_intervals = false;
  if (extent) {
    w.group("/intervals");
    has_intervals = true;
    const std::string ep = "/intervals/epochs";
    w.group(ep);
    w.doubles(ep + "/start_time", {seconds(extent->first)});
    w.column_typed(ep + "/start_time", "Start time of epoch, in seconds (device clock)");
    w.doubles(ep + "/stop_time", {seconds(extent->second)});
    w.column_typed(ep + "/stop_time", "Stop time of epoch, in seconds (device clock)");
    w.texts(ep + "/tags", {"spikeflow_run"});
    w.column_typed(ep + "/tags", "user-defined tags");
    w.ints(ep + "/tags_index", {1});
    w.column_typed(ep + "/tags_index", "Index for VectorData 'tags'", "VectorIndex");
    w.ref_attr(ep + "/tags_index", "target", ep + "/tags");
    w.table(ep, "TimeIntervals", "core",
            "the live run: first chunk start to the last device time it saw",
            {"start_time", "stop_time", "tags"}, 1);
    st.run_start_ns = extent->first;
    st.run_stop_ns = extent->second;
    st.epochs = 1;
  }

  if (session) {
    if (!session->behavior_names.empty() && !session->behavior_t_ns.empty()) {
      w.typed_group("/processing/behavior", "ProcessingModule");
      w.attr("/processing/behavior", "description", "behaviour of the session the run played");
      w.typed_group("/processing/behavior/Behavior", "BehavioralTimeSeries");
      const std::string b = "/processing/behavior/Behavior/" + o.behavior_name;
      w.typed_group(b, "TimeSeries");
      std::string names;
      for (const auto& n : session->behavior_names) names += (names.empty() ? "" : ", ") + n;
      w.attr(b, "description", "columns: " + names);
      w.attr(b, "comments", "from the session given to spikeflow export");
      w.dataset(b + "/data", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, session->behavior.data(),
                {static_cast<hsize_t>(session->behavior_t_ns.size()),
                 static_cast<hsize_t>(session->behavior_names.size())});
      w.attr(b + "/data", "conversion", 1.0);
      w.attr(b + "/data", "offset", 0.0);
      w.attr(b + "/data", "resolution", -1.0);
      w.attr(b + "/data", "unit", "session units");
      std::vector<double> t;
      for (int64_t x : session->behavior_t_ns) t.push_back(seconds(x));
      w.doubles(b + "/timestamps", t);
      w.attr(b + "/timestamps", "interval", 1.0);
      w.attr(b + "/timestamps", "unit", "seconds");
      st.behavior_samples = t.size();
    }
    if (!session->trials.empty()) {
      if (!has_intervals) w.group("/intervals");
      const std::string tr = "/intervals/trials";
      w.group(tr);
      std::vector<double> start, stop;
      std::vector<int64_t> cond;
      for (const auto& t : session->trials) {
        start.push_back(seconds(t.start_ns));
        stop.push_back(seconds(t.end_ns));
        cond.push_back(t.condition);
      }
      w.doubles(tr + "/start_time", start);
      w.column_typed(tr + "/start_time", "Start time of epoch, in seconds (device clock)");
      w.doubles(tr + "/stop_time", stop);
      w.column_typed(tr + "/stop_time", "Stop time of epoch, in seconds (device clock)");
      w.ints(tr + "/condition", cond);
      w.column_typed(tr + "/condition", "trial condition (e.g. target index)");
      w.table(tr, "TimeIntervals", "core", "experimental trials",
              {"start_time", "stop_time", "condition"}, session->trials.size());
      st.trials = session->trials.size();
    }
  }
  return st;
}

}  // namespace spikeflow::replay
