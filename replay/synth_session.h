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
  double min_rate_hz = 5.0;  ///< baseline rates drawn uniformly in [min, max]
  double max_rate_hz = 20.0;
  double modulation = 0.8;  ///< depth of cosine tuning relative to baseline, in [0, 1]
  double lead_s = 0.1;      ///< activity leads movement by this much
  double reach_distance_cm = 10.0;
  double reach_duration_s = 0.8;  ///< minimum-jerk movement time
  double hold_s = 0.5;            ///< rest between movements (trial = reach out, reach back, hold)
  int num_directions = 8;
  double behavior_dt_s = 0.01;  ///< velocity sampling period
  uint64_t seed = 1;
};

/// Throws std::invalid_argument listing every out-of-range option.
Session synthesize_session(const SynthOptions& options);

/// A corpus of sessions that share the movement (the same center-out reach dynamics and the same
/// cosine-tuned encoding family) but each has its own population, as recordings on different days
/// do: unit count, preferred directions, baseline rates, tuning depth and lead drawn per session;
/// slow per-unit gain drift inside a session; and a fraction of units that appear or vanish part
/// way through (both by exact Poisson thinning of the unit's spike train).
struct SynthCorpusOptions {
  int num_sessions = 8;
  int min_units = 40;  ///< units per session drawn uniformly in [min_units, max_units]
  int max_units = 120;
  double duration_s = 300.0;
  double drift = 0.3;      ///< a unit's gain moves linearly by up to this fraction over a session
  double turnover = 0.15;  ///< fraction of units that appear or vanish inside a session
  uint64_t seed = 1;
};

/// Session k of the corpus (deterministic in options and k). Throws std::invalid_argument.
Session synthesize_corpus_session(const SynthCorpusOptions& options, int k);

}  // namespace spikeflow::replay
