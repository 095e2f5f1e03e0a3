// spikeflow.Pipeline: the live graph in this process (pipeline/embedded_pipeline.h). Predictions
// queue on the graph thread and are handed to Python only on the thread that runs run() or
// iterates, never from a graph thread; Ctrl-C stops the pipeline cleanly (drained).
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/event_batch.h"
#include "core/prediction.h"
#include "core/time.h"
#include "pipeline/embedded_pipeline.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/python/py_common.h"

namespace spikeflow::python {
namespace {

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

void bind_pipeline(py::module_& m) {
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

}  // namespace spikeflow::python
