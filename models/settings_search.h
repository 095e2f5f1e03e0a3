// The settings search of train / pretrain / calibrate (TrainOptions::search): which learning
// rate, weight decay and unit dropout to train with, chosen on the validation split.
// Internal to models/; implemented in settings_search.cpp.
#pragma once

#include <functional>
#include <string>

#include "models/trainer.h"

namespace spikeflow::models::detail {

/// Successive halving: every candidate for a short run, the better half for twice as long, the
/// winner returned (search off, the rest of the budget). trial(opts) trains with opts and returns
/// the best validation R². Appends one line per candidate per rung and a decision line to report.
TrainOptions choose_settings(const TrainOptions& base,
                             const std::function<double(const TrainOptions&)>& trial,
                             std::string& report);

}  // namespace spikeflow::models::detail
