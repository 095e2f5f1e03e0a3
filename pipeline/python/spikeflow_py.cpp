// _spikeflow: the pybind11 layer under `import spikeflow` (pipeline/python/spikeflow/). Thin:
// numpy arrays in and out of the C++ API, no decoding logic of its own. Every call that can take
// long (decoding, training, reading files, the pipeline's run loop, stop) releases the GIL; the
// live pipeline's prediction callback is called back into Python only from the thread that runs
// Pipeline.run() / iterates it, never from a graph thread (graph threads only queue).
// Torch-free: models/load_decoder.h and models/trainer.h are torch-free headers; LibTorch comes
// in through spikeflow::models_torch at link time.
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "cli/split.h"
#include "core/decoding_dataset.h"
#include "core/prediction.h"
#include "core/r2.h"
#include "core/time.h"
#include "models/baselines.h"
#include "models/checkpoint_file.h"
#include "models/decode_dataset.h"
#include "models/load_decoder.h"
#include "models/trainer.h"
#include "pipeline/embedded_pipeline.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/preflight.h"
#include "pipeline/session_replay.h"
#include "pipeline/stats_report.h"
#include "replay/dataset.h"
#include "replay/recording_file.h"
#include "replay/session.h"
#include "replay/session_file.h"
#include "replay/synth_session.h"

namespace py = pybind11;

namespace spikeflow::python {
namespace {

template <typename T>
using CArray = py::array_t<T, py::array::c_style | py::array::forcecast>;

template <typename T>
py::array_t<T> to_numpy(const std::vector<T>& v) {
  py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

py::array_t<float> to_numpy_2d(const std::vector<float>& v, size_t rows, size_t cols) {
  py::array_t<float> a({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(cols)});
  std::copy(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(rows * cols), a.mutable_data());
  return a;
}

/// (n, 2) uint32 array of (channel, unit code), model order.
py::array_t<uint32_t> units_to_numpy(const std::vector<core::UnitKey>& units) {
  py::array_t<uint32_t> a({static_cast<py::ssize_t>(units.size()), py::ssize_t{2}});
  auto m = a.mutable_unchecked<2>();
  for (size_t i = 0; i < units.size(); ++i) {
    m(static_cast<py::ssize_t>(i), 0) = units[i].channel;
    m(static_cast<py::ssize_t>(i), 1) = units[i].unit;
  }
  return a;
}

py::object stats_to_python(const pipeline::PipelineStats& s) {
  return py::module_::import("json").attr("loads")(pipeline::stats_json(s));
}

// ---------------------------------------------------------------------------------------------
// Decoder: one checkpoint, stepped chunk by chunk from Python.

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

// ---------------------------------------------------------------------------------------------
// Sessions, datasets, recordings.

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

py::dict train(const replay::Session& s, const std::string& out, double width_ms,
               double train_fraction, double val_fraction, int epochs, double max_seconds,
               uint64_t seed, int threads, int dim, int rnn_hidden, const std::string& backbone,
               bool progress, const std::string& baselines_out) {
  models::TrainOptions o;
  o.max_epochs = epochs;
  o.max_seconds = max_seconds;
  o.seed = seed;
  o.threads = threads;
  o.model.dim = dim;
  o.model.rnn_hidden = rnn_hidden;
  o.model.backbone = backbone;
  o.progress = progress;  // the trainer's one-line progress bar, on stderr
  models::TrainResult r;
  std::vector<double> test_r2;
  {
    py::gil_scoped_release nogil;
    const auto width_ns = static_cast<int64_t>(std::llround(width_ms * 1e6));
    const cli::Split sp = cli::make_split(s, train_fraction, val_fraction, width_ns);
    auto build = [&](int64_t from, int64_t to) {
      replay::DatasetOptions d;
      d.width_ns = width_ns;
      d.from_ns = from;
      d.to_ns = to;
      return replay::build_dataset(s, d);
    };
    const auto train_set = build(sp.train_from, sp.val_from);
    const auto val_set = build(sp.val_from, sp.test_from);
    const auto test_set = build(sp.test_from, sp.test_to);
    r = models::train_possm(train_set, val_set, o, out);
    auto dec = models::load_decoder(out, models::RuntimeOptions{});
    test_r2 = core::r2_per_dim(test_set.targets, models::decode_dataset(*dec, test_set),
                               test_set.output_dim);
    if (!baselines_out.empty()) {
      models::save_baseline(*models::fit_ridge(train_set).decoder, baselines_out + ".ridge.ckpt");
      models::save_baseline(*models::fit_kalman(train_set).decoder, baselines_out + ".kalman.ckpt");
    }
  }
  py::dict d;
  d["best_val_r2"] = r.best_val_r2;
  d["best_val_r2_per_dim"] = r.best_val_r2_per_dim;
  d["best_epoch"] = r.best_epoch;
  d["epochs_run"] = r.epochs_run;
  d["seconds"] = r.seconds;
  d["num_parameters"] = r.num_parameters;
  d["test_r2_per_dim"] = test_r2;
  d["checkpoint"] = out;
  return d;
}

// ---------------------------------------------------------------------------------------------
// Pipeline: the live graph in this process; predictions queue on the graph thread and are
// handed to Python on the thread that runs run() or iterates.

class Pipeline {
 public:
  Pipeline(const std::string& config_path, const std::string& yaml_text,
           const std::string& checkpoint, bool publish, size_t queue_capacity)
      : capacity_(std::max<size_t>(1, queue_capacity)) {
    pipeline::PipelineConfig cfg = !config_path.empty()
                                       ? pipeline::load_pipeline_config(config_path)
                                       : pipeline::parse_pipeline_config(yaml_text, "yaml_text");
    if (!checkpoint.empty()) cfg.decoder.checkpoint = checkpoint;
    pipeline::EmbeddedOptions eo;
    eo.publish = publish;
    py::gil_scoped_release nogil;
    live_ = std::make_unique<pipeline::EmbeddedPipeline>(
        std::move(cfg), [this](const core::Prediction& p) { enqueue(p); }, std::move(eo));
  }
  ~Pipeline() {
    try {
      stop_nogil();
    } catch (const std::exception& e) {
      spdlog::error("spikeflow.Pipeline shutdown: {}", e.what());
    }
  }

  void start() {
    py::gil_scoped_release nogil;
    live_->start();
    started_ = true;
  }

  /// One packet's spikes (device ns, channel, unit code) for ingest.transport: none.
  void push(const CArray<int64_t>& t_ns, const CArray<uint32_t>& channel,
            const CArray<uint16_t>& unit, int64_t device_time_ns) {
    if (t_ns.ndim() != 1 || channel.ndim() != 1 || unit.ndim() != 1 ||
        t_ns.size() != channel.size() || t_ns.size() != unit.size()) {
      throw py::value_error(
          "Pipeline.push: t_ns, channel and unit must be 1-D arrays of the same length");
    }
    core::EventBatch b;
    b.arrival_host_ns = core::host_now_ns();
    b.device_time_ns = device_time_ns;
    b.events.resize(static_cast<size_t>(t_ns.size()));
    for (py::ssize_t i = 0; i < t_ns.size(); ++i) {
      auto& e = b.events[static_cast<size_t>(i)];
      e.t_ns = t_ns.data()[i];
      e.channel = channel.data()[i];
      e.unit = unit.data()[i];
    }
    py::gil_scoped_release nogil;
    live_->push(std::move(b));
  }

  /// Drains (every chunk binned so far is decoded and queued) and stops. Idempotent.
  py::object stop() {
    {
      py::gil_scoped_release nogil;
      stop_nogil();
    }
    return stats();
  }

  /// Blocks, delivering every prediction to callback (None: counted and discarded), until
  /// duration_s has passed (0: until interrupted / stop()), then stops and delivers what is left.
  /// Ctrl-C (KeyboardInterrupt) or an exception from callback stops the pipeline cleanly, then
  /// propagates.
  py::object run(const py::object& callback, double duration_s) {
    if (!started_) start();
    const auto t0 = std::chrono::steady_clock::now();
    for (;;) {
      const bool timed_out =
          duration_s > 0 &&
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() >=
              duration_s;
      if (timed_out || stop_requested()) {
        py::gil_scoped_release nogil;
        stop_nogil();
      }
      std::deque<core::Prediction> batch;
      bool done = false;
      {
        py::gil_scoped_release nogil;
        done = wait_batch(batch, kPollMs);
      }
      try {
        for (const auto& p : batch) {
          if (!callback.is_none()) callback(p);
        }
        if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      } catch (...) {
        py::gil_scoped_release nogil;
        stop_nogil();
        throw;
      }
      if (done) break;
    }
    return stats();
  }

  /// Any thread: asks run() / the iterator to stop the pipeline (drained) and return.
  void request_stop() {
    {
      std::lock_guard lock(mutex_);
      stop_requested_ = true;
    }
    cv_.notify_all();
  }

  /// Iterator protocol: the next prediction; StopIteration once stopped and drained.
  core::Prediction next() {
    for (;;) {
      std::optional<core::Prediction> p;
      bool done = false;
      {
        py::gil_scoped_release nogil;
        std::unique_lock lock(mutex_);
        cv_.wait_for(lock, std::chrono::milliseconds(kPollMs),
                     [&] { return !queue_.empty() || stopped_ || stop_requested_; });
        if (!queue_.empty()) {
          p = queue_.front();
          queue_.pop_front();
        } else {
          done = stopped_;
        }
      }
      if (p) return *p;
      if (done) throw py::stop_iteration();
      if (stop_requested()) {
        py::gil_scoped_release nogil;
        stop_nogil();
        continue;
      }
      if (PyErr_CheckSignals() != 0) {
        {
          py::gil_scoped_release nogil;
          stop_nogil();
        }
        throw py::error_already_set();
      }
    }
  }

  /// Next prediction within timeout_s, else None.
  std::optional<core::Prediction> poll(double timeout_s) {
    py::gil_scoped_release nogil;
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, std::chrono::duration<double>(std::max(0.0, timeout_s)),
                 [&] { return !queue_.empty() || stopped_; });
    if (queue_.empty()) return std::nullopt;
    auto p = queue_.front();
    queue_.pop_front();
    return p;
  }

  py::object stats() const {
    auto s = live_->stats();
    py::object d = stats_to_python(s);
    std::lock_guard lock(mutex_);
    d["python"] = py::dict(py::arg("dropped_predictions") = dropped_,
                           py::arg("queued") = queue_.size(), py::arg("stopped") = stopped_);
    return d;
  }
  uint64_t dropped() const {
    std::lock_guard lock(mutex_);
    return dropped_;
  }
  const pipeline::EmbeddedPipeline& live() const { return *live_; }

 private:
  static constexpr int kPollMs = 50;  // how often the waiting thread looks at Python's signals

  // Graph thread (the pipeline's on_prediction tap): never blocks on Python.
  void enqueue(const core::Prediction& p) {
    {
      std::lock_guard lock(mutex_);
      if (queue_.size() >= capacity_) {
        // Python is not consuming: the newest is dropped, counted and logged (rate-limited).
        if (dropped_++ % 1000 == 0) {
          spdlog::warn(
              "spikeflow.Pipeline: prediction queue full ({}), {} dropped so far: consume faster "
              "or "
              "raise queue_capacity",
              capacity_, dropped_);
        }
        return;
      }
      queue_.push_back(p);
    }
    cv_.notify_one();
  }

  // Without the GIL: waits up to ms for predictions; true once stopped and drained.
  bool wait_batch(std::deque<core::Prediction>& out, int ms) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, std::chrono::milliseconds(ms),
                 [&] { return !queue_.empty() || stopped_ || stop_requested_; });
    out.swap(queue_);
    return stopped_ && out.empty();
  }

  bool stop_requested() const {
    std::lock_guard lock(mutex_);
    return stop_requested_ && !stopped_;
  }

  void stop_nogil() {
    if (!live_) return;
    live_->stop();  // drains: the last predictions are queued before it returns
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
    }
    cv_.notify_all();
  }

  size_t capacity_;
  bool started_ = false;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<core::Prediction> queue_;
  uint64_t dropped_ = 0;
  bool stopped_ = false;
  bool stop_requested_ = false;
  std::unique_ptr<pipeline::EmbeddedPipeline> live_;  // last: its graph threads call enqueue()
};

}  // namespace
}  // namespace spikeflow::python

PYBIND11_MODULE(_spikeflow, m) {
  using namespace spikeflow;
  using namespace spikeflow::python;
  m.doc() = "spikeflow's C++ core (use the spikeflow package, not this module)";

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
  m.def("train", &train, py::arg("session"), py::arg("out"), py::arg("width_ms") = 50.0,
        py::arg("train_fraction") = 0.7, py::arg("val_fraction") = 0.1, py::arg("epochs") = 60,
        py::arg("max_seconds") = 0.0, py::arg("seed") = 0, py::arg("threads") = 2,
        py::arg("dim") = 64, py::arg("rnn_hidden") = 256, py::arg("backbone") = "gru",
        py::arg("progress") = true, py::arg("baselines_out") = "");
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

  py::class_<Pipeline>(m, "Pipeline")
      .def(py::init<const std::string&, const std::string&, const std::string&, bool, size_t>(),
           py::arg("config") = "", py::arg("yaml_text") = "", py::arg("checkpoint") = "",
           py::arg("publish") = false, py::arg("queue_capacity") = 65536)
      .def("start", &Pipeline::start)
      .def("push", &Pipeline::push, py::arg("t_ns"), py::arg("channel"), py::arg("unit"),
           py::arg("device_time_ns") = -1)
      .def("stop", &Pipeline::stop)
      .def("request_stop", &Pipeline::request_stop)
      .def("run", &Pipeline::run, py::arg("callback") = py::none(), py::arg("duration_s") = 0.0)
      .def("poll", &Pipeline::poll, py::arg("timeout_s") = 0.0)
      .def("__iter__", [](Pipeline& p) -> Pipeline& { return p; })
      .def("__next__", &Pipeline::next)
      .def("stats", &Pipeline::stats)
      .def_property_readonly("dropped_predictions", &Pipeline::dropped)
      .def_property_readonly("ingest_port",
                             [](const Pipeline& p) { return p.live().ingest_port(); })
      .def_property_readonly("publish_endpoint",
                             [](const Pipeline& p) { return p.live().publish_endpoint(); })
      .def_property_readonly("unit_map",
                             [](const Pipeline& p) { return units_to_numpy(p.live().units()); })
      .def_property_readonly("output_dim", [](const Pipeline& p) { return p.live().output_dim(); })
      .def_property_readonly("chunk_width_s",
                             [](const Pipeline& p) { return p.live().chunk_width_ns() / 1e9; });
}
