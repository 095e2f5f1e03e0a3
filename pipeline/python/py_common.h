// Shared by the translation units of the _spikeflow module (pipeline/python/): numpy conversion
// helpers and the per-area binding functions the module init (spikeflow_py.cpp) calls in order.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/unit_map.h"
#include "pipeline/stats_report.h"

namespace py = pybind11;

namespace spikeflow::python {

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <typename T>
py::array_t<T> to_numpy(const std::vector<T>& v) {
  py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

inline py::array_t<float> to_numpy_2d(const std::vector<float>& v, size_t rows, size_t cols) {
  py::array_t<float> a({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)});
  std::copy(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(rows * cols), a.mutable_data());
  return a;
}

/// (n, 2) uint32 array of (channel, unit code), model order.
inline py::array_t<uint32_t> units_to_numpy(const std::vector<core::UnitKey>& units) {
  py::array_t<uint32_t> a({static_cast<py::ssize_t>(units.size()), py::ssize_t{2}});
  auto m = a.mutable_unchecked<2>();
  for (size_t i = 0; i < units.size(); ++i) {
    m(static_cast<py::ssize_t>(i), 0) = units[i].channel;
    m(static_cast<py::ssize_t>(i), 1) = units[i].unit;
  }
  return a;
}

inline py::object stats_to_python(const pipeline::PipelineStats& s) {
  return py::module_::import("json").attr("loads")(pipeline::stats_json(s));
}

/// Value types (UnitKey, Prediction), sessions, datasets and recordings (py_data.cpp).
void bind_data(py::module_& m);
/// Decoder: a checkpoint stepped chunk by chunk (py_decoder.cpp).
void bind_decoder(py::module_& m);
/// train / calibrate / save_untrained_checkpoint (py_training.cpp).
void bind_training(py::module_& m);
/// Pipeline: the live graph in this process (py_pipeline.cpp).
void bind_pipeline(py::module_& m);

}  // namespace spikeflow::python
