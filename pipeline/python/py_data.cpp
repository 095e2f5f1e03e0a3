// Sessions, datasets and recordings as numpy (spike times, units, behaviour, trials; recorded
// packets and predictions with their timing), and the value types UnitKey and Prediction.
#include <pybind11/stl.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/decoding_dataset.h"
#include "core/prediction.h"
#include "models/decode_dataset.h"
#include "models/load_decoder.h"
#include "pipeline/python/py_common.h"
#include "replay/dataset.h"
#include "replay/recording_file.h"
#include "replay/session.h"
#include "replay/session_file.h"
#include "replay/synth_session.h"

namespace spikeflow::python {
namespace {

py::list spike_times(const replay::Session& s) {
  py::list out;
  for (const auto& t : s.spike_times_ns) out.append(to_numpy(t));
  return out;
}

py::array_t<int64_t> trials_to_numpy(const replay::Session& s) {
  py::array_t<int64_t> a({static_cast<py::ssize_t>(s.trials.size()), py::ssize_t{3}});
  auto m = a.mutable_unchecked<2>();
  for (size_t i = 0; i < s.trials.size(); ++i) {
    const auto r = static_cast<py::ssize_t>(i);
    m(r, 0) = s.trials[i].start_ns;
    m(r, 1) = s.trials[i].end_ns;
    m(r, 2) = s.trials[i].condition;
  }
  return a;
}

/// The session cut into chunks exactly as training and evaluation cut it (replay/dataset.h).
py::dict session_chunks(const replay::Session& s, double width_ms, int64_t from_ns, int64_t to_ns,
                        const std::vector<core::UnitKey>& unit_order) {
  core::DecodingDataset d;
  replay::DatasetStats st;
  {
    py::gil_scoped_release nogil;
    replay::DatasetOptions o;
    o.width_ns = static_cast<int64_t>(std::llround(width_ms * 1e6));
    o.from_ns = from_ns;
    o.to_ns = to_ns;
    o.unit_order = unit_order;
    d = replay::build_dataset(s, o, &st);
  }
  py::list units, offsets;
  std::vector<int64_t> seq, start;
  for (const auto& c : d.chunks) {
    units.append(to_numpy(c.unit));
    offsets.append(to_numpy(c.offset_s));
    seq.push_back(c.seq);
    start.push_back(c.start_ns);
  }
  py::dict out;
  out["units"] = units;
  out["offsets"] = offsets;
  out["seq"] = to_numpy(seq);
  out["start_ns"] = to_numpy(start);
  out["targets"] = to_numpy_2d(d.targets, d.size(), static_cast<size_t>(d.output_dim));
  out["trial"] = to_numpy(d.trial);
  out["output_names"] = d.output_names;
  out["dropped_spikes"] = st.dropped_spikes;
  return out;
}

/// The C++ reference: a checkpoint decoded over the session's chunks by models::decode_dataset.
py::array_t<float> decode_session(const std::string& checkpoint, const replay::Session& s,
                                  const std::string& path, int64_t from_ns, int64_t to_ns) {
  std::vector<float> y;
  size_t n = 0, dim = 0;
  {
    py::gil_scoped_release nogil;
    models::RuntimeOptions ro;
    ro.path = path;
    auto dec = models::load_decoder(checkpoint, ro);
    replay::DatasetOptions o;
    o.width_ns = dec->chunk_width_ns();
    o.from_ns = from_ns;
    o.to_ns = to_ns;
    o.unit_order = dec->units();
    const auto d = replay::build_dataset(s, o);
    y = models::decode_dataset(*dec, d);
    n = d.size();
    dim = static_cast<size_t>(dec->output_dim());
  }
  return to_numpy_2d(y, n, dim);
}

py::dict predictions_to_numpy(const std::vector<core::Prediction>& ps) {
  const size_t n = ps.size();
  int dim = 0;
  for (const auto& p : ps) dim = std::max(dim, p.output_dim);
  std::vector<int64_t> seq(n), chunk(n), start(n), end(n), trig(n), close(n), tok(n), ds(n), de(n),
      pub(n);
  std::vector<uint32_t> flags(n), ntok(n), epoch(n);
  std::vector<float> values(n * static_cast<size_t>(dim), 0.f);
  for (size_t i = 0; i < n; ++i) {
    const auto& p = ps[i];
    seq[i] = p.seq;
    chunk[i] = p.chunk_index;
    epoch[i] = p.epoch;
    start[i] = p.start_ns;
    end[i] = p.end_ns;
    flags[i] = p.flags;
    ntok[i] = p.n_tokens;
    for (int k = 0; k < p.output_dim; ++k)
      values[i * static_cast<size_t>(dim) + static_cast<size_t>(k)] =
          p.values[static_cast<size_t>(k)];
    trig[i] = p.timing.trigger_arrival_ns;
    close[i] = p.timing.close_ns;
    tok[i] = p.timing.tokenize_ns;
    ds[i] = p.timing.decode_start_ns;
    de[i] = p.timing.decode_end_ns;
    pub[i] = p.timing.publish_ns;
  }
  py::dict d;
  d["seq"] = to_numpy(seq);
  d["chunk_index"] = to_numpy(chunk);
  d["epoch"] = to_numpy(epoch);
  d["start_ns"] = to_numpy(start);
  d["end_ns"] = to_numpy(end);
  d["flags"] = to_numpy(flags);
  d["n_tokens"] = to_numpy(ntok);
  d["values"] = to_numpy_2d(values, n, static_cast<size_t>(dim));
  d["trigger_arrival_ns"] = to_numpy(trig);
  d["close_ns"] = to_numpy(close);
  d["tokenize_ns"] = to_numpy(tok);
  d["decode_start_ns"] = to_numpy(ds);
  d["decode_end_ns"] = to_numpy(de);
  d["publish_ns"] = to_numpy(pub);
  return d;
}

py::dict read_recording(const std::string& path) {
  replay::Recording r;
  {
    py::gil_scoped_release nogil;
    r = replay::read_recording(path);
  }
  std::vector<int64_t> arrival, device, t;
  std::vector<int64_t> first{0};
  std::vector<uint32_t> channel;
  std::vector<uint16_t> unit;
  for (const auto& b : r.batches) {
    arrival.push_back(b.arrival_host_ns);
    device.push_back(b.device_time_ns);
    for (const auto& e : b.events) {
      t.push_back(e.t_ns);
      channel.push_back(e.channel);
      unit.push_back(e.unit);
    }
    first.push_back(static_cast<int64_t>(t.size()));
  }
  py::dict packets;
  packets["arrival_host_ns"] = to_numpy(arrival);
  packets["device_time_ns"] = to_numpy(device);
  packets["event_index"] =
      to_numpy(first);  // packet i's events are [event_index[i], event_index[i+1])
  packets["t_ns"] = to_numpy(t);
  packets["channel"] = to_numpy(channel);
  packets["unit"] = to_numpy(unit);
  py::dict d;
  d["version"] = r.version;
  d["created_unix_ns"] = r.created_unix_ns;
  d["created_host_ns"] = r.created_host_ns;
  d["config"] = r.config;
  d["model"] = r.model;
  d["model_identity"] = r.model_identity;
  d["units"] = units_to_numpy(r.units);
  d["packets"] = packets;
  d["predictions"] = predictions_to_numpy(r.predictions);
  d["clean_end"] = r.clean_end;
  d["truncated"] = r.truncated;
  d["corrupt"] = r.corrupt;
  d["problem"] = r.problem;
  return d;
}

}  // namespace

void bind_data(py::module_& m) {
  py::class_<core::UnitKey>(m, "UnitKey")
      .def(py::init([](uint32_t channel, uint16_t unit) {
             return core::UnitKey{channel, unit};
           }),
           py::arg("channel"), py::arg("unit"))
      .def_readonly("channel", &core::UnitKey::channel)
      .def_readonly("unit", &core::UnitKey::unit)
      .def("__repr__", [](const core::UnitKey& k) {
        return "UnitKey(" + std::to_string(k.channel) + ", " + std::to_string(k.unit) + ")";
      });

  py::class_<core::Prediction>(m, "Prediction")
      .def_readonly("seq", &core::Prediction::seq)
      .def_readonly("chunk_index", &core::Prediction::chunk_index)
      .def_readonly("epoch", &core::Prediction::epoch)
      .def_readonly("start_ns", &core::Prediction::start_ns)
      .def_readonly("end_ns", &core::Prediction::end_ns)
      .def_readonly("flags", &core::Prediction::flags)
      .def_readonly("n_tokens", &core::Prediction::n_tokens)
      .def_property_readonly(
          "values",
          [](const core::Prediction& p) {
            return to_numpy(std::vector<float>(p.values.begin(), p.values.begin() + p.output_dim));
          })
      .def_property_readonly("timing",
                             [](const core::Prediction& p) {
                               py::dict d;
                               d["trigger_arrival_ns"] = p.timing.trigger_arrival_ns;
                               d["close_ns"] = p.timing.close_ns;
                               d["tokenize_ns"] = p.timing.tokenize_ns;
                               d["decode_start_ns"] = p.timing.decode_start_ns;
                               d["decode_end_ns"] = p.timing.decode_end_ns;
                               d["publish_ns"] = p.timing.publish_ns;
                               return d;
                             })
      .def("__repr__", [](const core::Prediction& p) {
        return "Prediction(seq=" + std::to_string(p.seq) +
               ", start_ns=" + std::to_string(p.start_ns) +
               ", n_tokens=" + std::to_string(p.n_tokens) + ")";
      });

  py::class_<replay::Session>(m, "Session")
      .def_static(
          "load",
          [](const std::string& path) {
            py::gil_scoped_release nogil;
            return replay::load_session(path);
          },
          py::arg("path"))
      .def_static(
          "synthesize",
          [](int num_units, double duration_s, uint64_t seed) {
            replay::SynthOptions o;
            o.num_units = num_units;
            o.duration_s = duration_s;
            o.seed = seed;
            py::gil_scoped_release nogil;
            return replay::synthesize_session(o);
          },
          py::arg("num_units") = 96, py::arg("duration_s") = 300.0, py::arg("seed") = 1)
      .def(
          "save",
          [](const replay::Session& s, const std::string& path) {
            py::gil_scoped_release nogil;
            replay::write_session_file(s, path);
          },
          py::arg("path"))
      .def_property_readonly("units",
                             [](const replay::Session& s) { return units_to_numpy(s.units); })
      .def_property_readonly("spike_times_ns", &spike_times)
      .def_property_readonly("behavior_names",
                             [](const replay::Session& s) { return s.behavior_names; })
      .def_property_readonly("behavior_t_ns",
                             [](const replay::Session& s) { return to_numpy(s.behavior_t_ns); })
      .def_property_readonly("behavior",
                             [](const replay::Session& s) {
                               return to_numpy_2d(s.behavior, s.behavior_t_ns.size(),
                                                  s.behavior_names.size());
                             })
      .def_property_readonly("trials", &trials_to_numpy)
      .def_readonly("start_ns", &replay::Session::start_ns)
      .def_readonly("end_ns", &replay::Session::end_ns)
      .def_property_readonly("num_spikes", &replay::Session::num_spikes);

  m.def("session_chunks", &session_chunks, py::arg("session"), py::arg("width_ms") = 50.0,
        py::arg("from_ns") = INT64_MIN, py::arg("to_ns") = INT64_MAX,
        py::arg("unit_order") = std::vector<core::UnitKey>{});
  m.def("decode_session", &decode_session, py::arg("checkpoint"), py::arg("session"),
        py::arg("path") = "auto", py::arg("from_ns") = INT64_MIN, py::arg("to_ns") = INT64_MAX);
  m.def("read_recording", &read_recording, py::arg("path"));
}

}  // namespace spikeflow::python
