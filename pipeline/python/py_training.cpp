// spikeflow.train / spikeflow.calibrate: the CLI's training runs (pipeline/training_run.h), the
// same split, options, progress bar (stderr) and printed comparison (Python's sys.stdout), with
// the comparison returned as a dict. Options come as a dict of the keys the user gave, applied
// over the C++ defaults, so the defaults live in one place; an unknown key or an out-of-range
// value is a ValueError naming it. The GIL is released while training; the report text takes
// it back only to write to sys.stdout.
#include <pybind11/stl.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "models/trainer.h"
#include "pipeline/config_keys.h"
#include "pipeline/python/py_common.h"
#include "pipeline/training_run.h"
#include "replay/session.h"

namespace spikeflow::python {
namespace {

/// Sets one option from a Python value, after checking it lies in [lo, hi].
using Setter = std::function<void(const py::handle&)>;

template <typename T>
Setter number(T& field, const std::string& name, double lo, double hi) {
  return [&field, name, lo, hi](const py::handle& v) {
    const double x = v.cast<double>();
    if (!std::isfinite(x) || x < lo || x > hi) {
      throw py::value_error(name + " = " + py::str(v).cast<std::string>() + " is outside [" +
                            py::str(py::float_(lo)).cast<std::string>() + ", " +
                            py::str(py::float_(hi)).cast<std::string>() + "]");
    }
    if constexpr (std::is_integral_v<T>) {
      if (x != std::floor(x)) throw py::value_error(name + " must be a whole number");
    }
    field = static_cast<T>(x);
  };
}

Setter flag(bool& field) {
  return [&field](const py::handle& v) { field = v.cast<bool>(); };
}

Setter text(std::string& field) {
  return [&field](const py::handle& v) { field = v.cast<std::string>(); };
}

void apply(const py::dict& given, const std::map<std::string, Setter>& setters,
           const char* what) {
  for (const auto& [k, v] : given) {
    const auto key = k.cast<std::string>();
    const auto it = setters.find(key);
    if (it == setters.end()) {
      std::string known;
      for (const auto& [name, _] : setters) known += (known.empty() ? "" : ", ") + name;
      throw py::value_error(std::string(what) + ": unknown option '" + key + "' (known: " + known +
                            ")");
    }
    it->second(v);
  }
}

/// Training options every run shares (the flags cli/cmd_train.cpp and cli/cmd_pretrain.cpp take).
void training_setters(models::TrainOptions& o, std::map<std::string, Setter>& s) {
  const auto threads = pipeline::pipeline_config_key("decoder.threads");
  s["epochs"] = number(o.max_epochs, "epochs", 1, 1e6);
  s["max_seconds"] = number(o.max_seconds, "max_seconds", 0, 1e9);
  s["batch"] = number(o.batch_size, "batch", 1, 1e6);
  s["lr"] = number(o.lr, "lr", 1e-9, 10);
  s["weight_decay"] = number(o.weight_decay, "weight_decay", 0, 10);
  s["unit_dropout"] = number(o.unit_dropout, "unit_dropout", 0, 0.95);
  s["seed"] = number(o.seed, "seed", 0, 9.007199254740992e15);
  s["threads"] = number(o.threads, "threads", threads.min, threads.max);
  s["patience"] = number(o.patience, "patience", 1, 1e6);
  s["progress"] = flag(o.progress);
}

/// The report goes to Python's sys.stdout (Jupyter, pytest's capture), under the GIL.
pipeline::ReportSink python_stdout() {
  return [](std::string_view t) {
    py::gil_scoped_acquire gil;
    auto out = py::module_::import("sys").attr("stdout");
    out.attr("write")(py::str(t.data(), t.size()));
    out.attr("flush")();
  };
}

py::dict rows_to_dict(const std::vector<pipeline::R2Row>& rows) {
  py::dict d;
  for (const auto& r : rows) {
    py::dict row;
    row["r2_mean"] = r.mean();
    row["r2_per_dim"] = r.r2;
    d[py::str(r.name == "ridge (250 ms)" ? "ridge" : r.name)] = row;
  }
  return d;
}

py::dict stage(const models::TrainResult& r) {
  py::dict d;
  d["best_val_r2"] = r.best_val_r2;
  d["best_epoch"] = r.best_epoch;
  d["epochs_run"] = r.epochs_run;
  d["seconds"] = r.seconds;
  return d;
}

py::dict train(const replay::Session& s, const std::string& out, const py::dict& options,
               bool report) {
  pipeline::TrainRunOptions o;
  std::map<std::string, Setter> setters;
  training_setters(o.train, setters);
  const auto width = pipeline::pipeline_config_key("chunking.width_ms");
  setters["width_ms"] = number(o.width_ms, "width_ms", width.min, width.max);
  setters["train_fraction"] = number(o.train_fraction, "train_fraction", 0, 1);
  setters["val_fraction"] = number(o.val_fraction, "val_fraction", 0, 1);
  setters["dim"] = number(o.train.model.dim, "dim", 1, 65536);
  setters["rnn_hidden"] = number(o.train.model.rnn_hidden, "rnn_hidden", 1, 65536);
  setters["backbone"] = [&o](const py::handle& v) {
    o.train.model.backbone = v.cast<std::string>();
    if (o.train.model.backbone != "gru" && o.train.model.backbone != "s4d")
      throw py::value_error("backbone must be 'gru' or 's4d', not '" + o.train.model.backbone +
                            "'");
  };
  setters["finetune"] = text(o.train.finetune_from);
  setters["search"] = flag(o.train.search);
  setters["baselines"] = flag(o.baselines);
  setters["baselines_out"] = text(o.baselines_out);
  apply(options, setters, "spikeflow.train");
  pipeline::TrainRunReport r;
  {
    py::gil_scoped_release nogil;
    r = pipeline::run_training(s, out, o, report ? python_stdout() : [](std::string_view) {});
  }
  py::dict d;
  d["best_val_r2"] = r.result.best_val_r2;
  d["best_val_r2_per_dim"] = r.result.best_val_r2_per_dim;
  d["best_epoch"] = r.result.best_epoch;
  d["epochs_run"] = r.result.epochs_run;
  d["seconds"] = r.result.seconds;
  d["num_parameters"] = r.result.num_parameters;
  d["test_r2_per_dim"] = r.test.front().r2;  // the trained model's
  d["test"] = rows_to_dict(r.test);
  d["chunks"] = py::dict(py::arg("train") = r.train_chunks, py::arg("validation") = r.val_chunks,
                         py::arg("test") = r.test_chunks);
  d["search_report"] = r.result.search_report;
  d["checkpoint"] = out;
  return d;
}

py::dict calibrate(const std::string& base, const replay::Session& s, const std::string& label,
                   const std::string& out, const py::dict& options, bool report) {
  pipeline::CalibrateRunOptions o;
  o.calibrate.base = base;
  o.calibrate.train.unit_dropout = 0.2;  // as `spikeflow calibrate`: transfer leans on no one unit
  std::map<std::string, Setter> setters;
  training_setters(o.calibrate.train, setters);
  setters["calibration_s"] = number(o.calibration_s, "calibration_s", 1, 1e7);
  setters["test_fraction"] = number(o.test_fraction, "test_fraction", 0.01, 0.99);
  setters["val_share"] = number(o.val_share, "val_share", 0.05, 0.5);
  setters["reid_epochs"] = number(o.calibrate.reid_epochs, "reid_epochs", 1, 1e6);
  setters["finetune_epochs"] = number(o.calibrate.finetune_epochs, "finetune_epochs", 1, 1e6);
  setters["reid_lr_scale"] = number(o.calibrate.reid_lr_scale, "reid_lr_scale", 1e-6, 100);
  setters["finetune_lr_scale"] =
      number(o.calibrate.finetune_lr_scale, "finetune_lr_scale", 1e-6, 10);
  setters["finetune"] = flag(o.calibrate.finetune);
  setters["scratch"] = flag(o.scratch);
  apply(options, setters, "spikeflow.calibrate");
  pipeline::CalibrateRunReport r;
  {
    py::gil_scoped_release nogil;
    r = pipeline::run_calibration(s, label, out, o,
                                  report ? python_stdout() : [](std::string_view) {});
  }
  py::dict d = rows_to_dict(r.test);
  const std::string winner = r.test[r.best].name;
  d["winner"] = winner == "ridge (250 ms)" ? "ridge" : winner;
  d["reid"] = stage(r.result.reid);
  d["finetune"] = stage(r.result.finetune);
  d["finetune_kept"] = r.result.finetune_kept;
  d["base_sessions"] = r.result.base_sessions;
  d["chunks"] = py::dict(
      py::arg("calibration") = r.calibration_chunks, py::arg("train") = r.train_chunks,
      py::arg("early_stopping") = r.val_chunks, py::arg("test") = r.test_chunks);
  d["checkpoint"] = out;
  return d;
}

}  // namespace

void bind_training(py::module_& m) {
  m.def("train", &train, py::arg("session"), py::arg("out"), py::arg("options") = py::dict(),
        py::arg("report") = true);
  m.def("calibrate", &calibrate, py::arg("base"), py::arg("session"), py::arg("label"),
        py::arg("out"), py::arg("options") = py::dict(), py::arg("report") = true);
  m.def(
      "save_untrained_checkpoint",
      [](const std::string& path, const std::vector<core::UnitKey>& units, int output_dim,
         double width_ms, int dim, int rnn_hidden, uint64_t seed) {
        models::PossmConfig c;
        c.dim = dim;
        c.rnn_hidden = rnn_hidden;
        py::gil_scoped_release nogil;
        models::save_untrained_possm(path, c, units, output_dim,
                                     static_cast<int64_t>(std::llround(width_ms * 1e6)), seed);
      },
      py::arg("path"), py::arg("units"), py::arg("output_dim") = 2, py::arg("width_ms") = 50.0,
      py::arg("dim") = 64, py::arg("rnn_hidden") = 256, py::arg("seed") = 0);
}

}  // namespace spikeflow::python
