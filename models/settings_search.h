// The settings search of train / pretrain / calibrate (TrainOptions::search): which learning
// rate, weight decay and unit dropout to train with, chosen on the validation split within a
// share of the wall-clock budget. First an LR range test centres the learning rates, then
// successive halving (Jamieson & Talwalkar, AISTATS 2016) picks among candidates around that
// centre, today's defaults always among them. Deterministic for a seed when max_seconds = 0.
// Internal to models/ (torch-free); implemented in settings_search.cpp.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "models/trainer.h"

namespace spikeflow::models::detail {

/// An LR range test's outcome: learning rate and smoothed training loss per step.
struct LrCurve {
  std::vector<double> lr, loss;
  int steps_per_epoch = 0;  ///< optimizer steps in one epoch of this run
  double seconds = 0;       ///< wall time the sweep took
};

/// What the range test suggests: the learning rate at the loss minimum / 10 (the usual rule;
/// Smith 2017, fastai's lr_find), and the steepest descent of the loss over log lr (reported).
struct LrSuggestion {
  bool ok = false;       ///< false: too few points or no descent; the centre is the default lr
  double min_loss_lr = 0;
  double steepest_lr = 0;
  double centre = 0;     ///< min_loss_lr / 10, clamped to [default / 10, default x 3]
  bool clamped = false;
};

LrSuggestion suggest_lr(const LrCurve& curve, double default_lr);

/// Candidate settings: the defaults first, then learning rates around `centre` (x1, /3, x2, /10)
/// crossed with stronger weight decay and unit dropout; near-duplicates dropped; at most n.
/// `regularised` (calibration on tiny data) puts the stronger-regularised ones first.
struct Candidate {
  double lr, weight_decay, unit_dropout;
  std::string why;
};
std::vector<Candidate> search_candidates(const TrainOptions& base, double centre, size_t n,
                                         bool regularised);

/// Runs an LR range test on a fresh run of `opts` from lr lo to hi in `steps` steps.
using LrSweep = std::function<LrCurve(const TrainOptions& opts, double lo, double hi, int steps)>;
/// Trains with opts (epochs, budget and settings given) and returns its best validation R².
using Trial = std::function<double(const TrainOptions& opts)>;

/// The search: a range test (at most 1/4 of the search's share), then successive halving over
/// the candidates: each for max_epochs/8 epochs (>= 2), the better half for twice as long, until
/// one is left. With max_seconds the search takes at most 40 % of it, the candidates fewer when
/// an epoch would not fit (>= 2), and the returned options carry the budget left. The returned
/// options have search off. Appends to report: the range test, one line per candidate per rung,
/// and a decision line (also to stderr when opts.progress).
TrainOptions choose_settings(const TrainOptions& base, const LrSweep& sweep, const Trial& trial,
                             std::string& report, bool regularised = false);

/// "lr 0.003, weight decay 0.01, unit dropout 0.10, EMA off": the settings a run trained with.
std::string settings_line(const TrainOptions& o);

}  // namespace spikeflow::models::detail
