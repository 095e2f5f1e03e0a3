// Synthetic session generator: a cosine-tuned Poisson population driven by center-out reaches
// with minimum-jerk velocity profiles; neural activity leads movement. Seeded: the same options
// give the same session, bit for bit.
#pragma once

#include <cstdint>

#include "replay/session.h"

namespace spikeflow::replay {

struct SynthOptions {
  int num_units = 96;
  double duration_s = 300.0;
  double min_rate_hz = 5.0;       ///< baseline rates drawn uniformly in [min, max]
  double max_rate_hz = 20.0;
  double modulation = 0.8;        ///< depth of cosine tuning relative to baseline, in [0, 1]
  double lead_s = 0.1;            ///< activity leads movement by this much
  double reach_distance_cm = 10.0;
  double reach_duration_s = 0.8;  ///< minimum-jerk movement time
  double hold_s = 0.5;            ///< rest between movements (trial = reach out, reach back, hold)
  int num_directions = 8;
  double behavior_dt_s = 0.01;    ///< velocity sampling period
  uint64_t seed = 1;
};

/// Throws std::invalid_argument listing every out-of-range option.
Session synthesize_session(const SynthOptions& options);

}  // namespace spikeflow::replay
