// _spikeflow: the pybind11 layer under `import spikeflow` (pipeline/python/spikeflow/). Thin:
// numpy arrays in and out of the C++ API, no decoding logic of its own. Every call that can take
// long (decoding, training, reading files, the pipeline's run loop, stop) releases the GIL; the
// live pipeline's prediction callback is called back into Python only from the thread that runs
// Pipeline.run() / iterates it, never from a graph thread (graph threads only queue).
// Torch-free: models/load_decoder.h and models/trainer.h are torch-free headers; LibTorch comes
// in through spikeflow::models_torch at link time.
//
// One file per area, each with its bind_* function (py_common.h): py_data.cpp (value types,
// sessions, datasets, recordings), py_decoder.cpp, py_training.cpp, py_pipeline.cpp. The value
// types are registered first: the other areas take and return them.
#include "pipeline/python/py_common.h"

PYBIND11_MODULE(_spikeflow, m) {
  m.doc() = "spikeflow's C++ core (use the spikeflow package, not this module)";
  spikeflow::python::bind_data(m);
  spikeflow::python::bind_decoder(m);
  spikeflow::python::bind_training(m);
  spikeflow::python::bind_pipeline(m);
}
