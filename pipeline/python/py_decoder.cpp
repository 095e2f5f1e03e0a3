// spikeflow.Decoder: one checkpoint stepped chunk by chunk from Python (numpy in and out), the
// GIL released around loading and decoding. Same numbers as the C++ fast path (tests/python).
#include <pybind11/stl.h>

#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/token_chunk.h"
#include "models/checkpoint_file.h"
#include "models/load_decoder.h"
#include "pipeline/python/py_common.h"

namespace spikeflow::python {
namespace {

class Decoder {
 public:
  Decoder(const std::string& checkpoint, const std::string& device, const std::string& path,
          int threads) {
    models::RuntimeOptions o;
    o.device = device;
    o.path = path;
    o.threads = threads;
    {
      py::gil_scoped_release nogil;
      dec_ = models::load_decoder(checkpoint, o);
      try {
        names_ = models::CheckpointFile::read(checkpoint).get_strings("output_names");
      } catch (const std::exception&) {
        names_.clear();  // older checkpoints: y0, y1, ...
      }
    }
    if (names_.size() != static_cast<size_t>(dec_->output_dim())) {
      names_.clear();
      for (int i = 0; i < dec_->output_dim(); ++i) {
        std::string name = "y";  // not "y" + to_string(i): GCC 12's -Wrestrict false positive
        name += std::to_string(i);
        names_.push_back(std::move(name));
      }
    }
    width_ns_ = dec_->chunk_width_ns();
  }

  void reset() {
    py::gil_scoped_release nogil;
    dec_->reset();
    seq_ = 0;
  }

  /// One chunk of tokens: model unit indices and offsets (s) inside the chunk.
  py::array_t<float> step(const CArray<int32_t>& units, const CArray<float>& offsets) {
    if (units.ndim() != 1 || offsets.ndim() != 1 || units.size() != offsets.size()) {
      throw py::value_error(
          "Decoder.step: units and offsets must be 1-D arrays of the same length (got " +
          std::to_string(units.size()) + " and " + std::to_string(offsets.size()) + ")");
    }
    const int32_t n_units = static_cast<int32_t>(dec_->units().size());
    const float width_s = static_cast<float>(width_ns_ / 1e9);
    next_chunk();
    const int32_t* u = units.data();
    const float* o = offsets.data();
    for (py::ssize_t i = 0; i < units.size(); ++i) {
      if (u[i] < 0 || u[i] >= n_units) {
        throw py::value_error("Decoder.step: unit index " + std::to_string(u[i]) + " outside [0, " +
                              std::to_string(n_units) + ") (see Decoder.unit_map)");
      }
      if (!std::isfinite(o[i]) || o[i] < 0 || o[i] >= width_s) {
        throw py::value_error("Decoder.step: offset " + std::to_string(o[i]) +
                              " s outside the chunk [0, " + std::to_string(width_s) + ") s");
      }
    }
    chunk_.unit.assign(u, u + units.size());
    chunk_.offset_s.assign(o, o + offsets.size());
    py::array_t<float> out(static_cast<py::ssize_t>(dec_->output_dim()));
    float* y = out.mutable_data();
    {
      py::gil_scoped_release nogil;
      dec_->step(chunk_, std::span<float>(y, static_cast<size_t>(dec_->output_dim())));
    }
    return out;
  }

  /// Binned counts, one bin = one chunk: (n_units,) -> (output_dim,), or (n_bins, n_units) ->
  /// (n_bins, output_dim) decoded in order in one call.
  py::array_t<float> step_counts(const CArray<double>& counts, double bin_s) {
    const size_t n_units = dec_->units().size();
    const double width_s = width_ns_ / 1e9;
    if (!(std::abs(bin_s - width_s) <= 1e-6)) {
      throw py::value_error("Decoder.step_counts: bin_s " + std::to_string(bin_s) +
                            " s differs from the checkpoint's chunk width " +
                            std::to_string(width_s) + " s (one bin is one chunk)");
    }
    if (counts.ndim() < 1 || counts.ndim() > 2 ||
        counts.shape(counts.ndim() - 1) != static_cast<py::ssize_t>(n_units)) {
      throw py::value_error(
          "Decoder.step_counts: counts must have shape (n_units,) or (n_bins, n_units) with "
          "n_units = " +
          std::to_string(n_units));
    }
    const bool batch = counts.ndim() == 2;
    const size_t n_bins = batch ? static_cast<size_t>(counts.shape(0)) : 1;
    const double* c = counts.data();
    for (size_t i = 0; i < n_bins * n_units; ++i) {
      if (!std::isfinite(c[i]) || c[i] < 0 || c[i] != std::floor(c[i]) || c[i] > 1e6) {
        throw py::value_error(
            "Decoder.step_counts: counts must be whole numbers in [0, 1e6] (bin " +
            std::to_string(i / n_units) + ", unit " + std::to_string(i % n_units) + ": " +
            std::to_string(c[i]) + ")");
      }
    }
    const size_t dim = static_cast<size_t>(dec_->output_dim());
    std::vector<float> out(n_bins * dim);
    {
      py::gil_scoped_release nogil;
      for (size_t b = 0; b < n_bins; ++b) {
        next_chunk();
        counts_to_tokens(c + b * n_units, n_units, width_s, chunk_);
        dec_->step(chunk_, std::span<float>(out.data() + b * dim, dim));
      }
    }
    if (!batch) return to_numpy(out);
    return to_numpy_2d(out, n_bins, dim);
  }

  /// Count c of unit u -> c tokens at offsets (k + 0.5) * width / c, k = 0..c-1 (evenly spaced,
  /// centred in the bin), in time order (ties by unit), as the live tokenizer orders spikes.
  static void counts_to_tokens(const double* counts, size_t n_units, double width_s,
                               core::TokenChunk& chunk) {
    struct Token {
      float offset;
      int32_t unit;
    };
    std::vector<Token> tokens;
    for (size_t u = 0; u < n_units; ++u) {
      const auto c = static_cast<int64_t>(counts[u]);
      for (int64_t k = 0; k < c; ++k) {
        tokens.push_back(
            {static_cast<float>((static_cast<double>(k) + 0.5) * width_s / static_cast<double>(c)),
             static_cast<int32_t>(u)});
      }
    }
    std::stable_sort(tokens.begin(), tokens.end(),
                     [](const Token& a, const Token& b) { return a.offset < b.offset; });
    chunk.clear_tokens();
    for (const auto& t : tokens) {
      chunk.unit.push_back(t.unit);
      chunk.offset_s.push_back(t.offset);
    }
  }

  py::array_t<uint32_t> unit_map() const { return units_to_numpy(dec_->units()); }
  const std::vector<std::string>& output_names() const { return names_; }
  int output_dim() const { return dec_->output_dim(); }
  double chunk_width_s() const { return width_ns_ / 1e9; }
  std::string describe() const { return dec_->describe(); }

 private:
  void next_chunk() {
    chunk_.seq = seq_;
    chunk_.start_ns = seq_ * width_ns_;
    chunk_.end_ns = chunk_.start_ns + width_ns_;
    chunk_.flags = 0;
    ++seq_;
  }

  std::unique_ptr<models::StreamingDecoder> dec_;
  std::vector<std::string> names_;
  core::TokenChunk chunk_;
  int64_t width_ns_ = 0;
  int64_t seq_ = 0;
};

}  // namespace

void bind_decoder(py::module_& m) {
  py::class_<Decoder>(m, "Decoder")
      .def(py::init<const std::string&, const std::string&, const std::string&, int>(),
           py::arg("checkpoint"), py::arg("device") = "cpu", py::arg("path") = "auto",
           py::arg("threads") = 1)
      .def("step", &Decoder::step, py::arg("units"), py::arg("offsets"))
      .def("step_counts", &Decoder::step_counts, py::arg("counts"), py::arg("bin_s"))
      .def("reset", &Decoder::reset)
      .def_property_readonly("unit_map", &Decoder::unit_map)
      .def_property_readonly("output_names", &Decoder::output_names)
      .def_property_readonly("output_dim", &Decoder::output_dim)
      .def_property_readonly("chunk_width_s", &Decoder::chunk_width_s)
      .def("describe", &Decoder::describe);
}

}  // namespace spikeflow::python
