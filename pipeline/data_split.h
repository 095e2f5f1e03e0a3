// The one train / validation / test split every command uses (train, eval, replay, calibrate, the
// Python module), so that they all score exactly the same held-out data: by trial when the
// session has trials, else by time (replay::split_time_ns). Header-only; no threads, no I/O.
#pragma once

#include <cstdint>

#include "replay/dataset.h"
#include "replay/session.h"

namespace spikeflow::pipeline {

struct Split {
  int64_t train_from, val_from, test_from, test_to;  ///< device ns
};

/// train = [start, val_from), validation = [val_from, test_from), test = [test_from, end).
inline Split make_split(const replay::Session& s, double train_fraction, double val_fraction,
                        int64_t width_ns) {
  Split sp;
  sp.train_from = s.start_ns;
  sp.val_from = replay::split_time_ns(s, train_fraction, width_ns);
  sp.test_from = replay::split_time_ns(s, train_fraction + val_fraction, width_ns);
  sp.test_to = s.end_ns;
  return sp;
}

/// The chunks of s in [from, to) as a decoding dataset (the parts of a split).
inline core::DecodingDataset build_range(const replay::Session& s, int64_t width_ns, int64_t from,
                                         int64_t to) {
  replay::DatasetOptions o;
  o.width_ns = width_ns;
  o.from_ns = from;
  o.to_ns = to;
  return replay::build_dataset(s, o);
}

}  // namespace spikeflow::pipeline
