// The one train / validation / test split every command uses (train, eval, replay, calibrate, the
// Python module), so that they all score exactly the same held-out data: by trial when the
// session has trials, else by time (replay::split_time_ns). Header-only; no threads, no I/O.
#pragma once

#include <cstdint>

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

}  // namespace spikeflow::pipeline
