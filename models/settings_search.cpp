#include "models/settings_search.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <utility>

namespace spikeflow::models::detail {

namespace {

using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

constexpr int kSweepSteps = 80;          ///< range test length (fewer when its budget runs out)
constexpr double kSweepLo = 1.0 / 100;   ///< range test from default lr / 100 ...
constexpr double kSweepHi = 30;          ///< ... to default lr x 30
constexpr double kSearchShare = 0.4;     ///< of max_seconds, for range test + halving
constexpr double kSweepShare = 0.25;     ///< of the search's share, for the range test
constexpr double kMinGain = 0.002;       ///< validation R² a candidate must beat the defaults by

void add_line(std::string& report, bool print, const char* line) {
  report += line;
  if (print) std::fprintf(stderr, "%s", line);
}

}  // namespace

LrSuggestion suggest_lr(const LrCurve& curve, double default_lr) {
  LrSuggestion s;
  s.centre = default_lr;
  const size_t n = curve.loss.size();
  if (n < 10) return s;
  const size_t i_min = static_cast<size_t>(
      std::min_element(curve.loss.begin(), curve.loss.end()) - curve.loss.begin());
  if (i_min < 3) return s;  // the loss never fell: the sweep says nothing about the rate
  s.ok = true;
  s.min_loss_lr = curve.lr[i_min];
  double steepest = 0;
  for (size_t i = 1; i + 1 < n && i <= i_min; ++i) {
    const double g = (curve.loss[i + 1] - curve.loss[i - 1]) /
                     (std::log(curve.lr[i + 1]) - std::log(curve.lr[i - 1]));
    if (g < steepest) {
      steepest = g;
      s.steepest_lr = curve.lr[i];
    }
  }
  const double c = s.min_loss_lr / 10;
  s.centre = std::clamp(c, default_lr / 10, default_lr * 3);
  s.clamped = s.centre != c;
  return s;
}

std::vector<Candidate> search_candidates(const TrainOptions& base, double centre, size_t n,
                                         bool regularised) {
  const double wd = base.weight_decay, wd_reg = std::max(1e-4, base.weight_decay) * 10;
  const double drop = base.unit_dropout;
  const double drop_reg = std::min(0.6, std::max(0.05, base.unit_dropout) * 2);
  std::vector<Candidate> plain{{centre, wd, drop, "range test"},
                               {centre / 3, wd, drop, "range test / 3"},
                               {centre * 2, wd, drop, "range test x 2"},
                               {centre / 10, wd, drop, "range test / 10"}};
  std::vector<Candidate> reg{{centre, wd_reg, drop_reg, "range test, regularised"},
                             {centre / 3, wd_reg, drop_reg, "range test / 3, regularised"},
                             {base.lr, wd_reg, drop_reg, "defaults, regularised"}};
  std::vector<Candidate> order{{base.lr, wd, drop, "defaults"}};
  const auto& first = regularised ? reg : plain;
  const auto& second = regularised ? plain : reg;
  // Interleaved, so that a short list still spans both learning rate and regularisation.
  for (size_t i = 0; i < std::max(first.size(), second.size()); ++i) {
    if (i < first.size()) order.push_back(first[i]);
    if (i < second.size()) order.push_back(second[i]);
  }
  std::vector<Candidate> out;
  for (const auto& c : order) {
    if (out.size() >= n) break;
    const bool dup = std::any_of(out.begin(), out.end(), [&](const Candidate& o) {
      return o.weight_decay == c.weight_decay && o.unit_dropout == c.unit_dropout &&
             c.lr / o.lr > 0.8 && c.lr / o.lr < 1.25;
    });
    if (!dup) out.push_back(c);
  }
  return out;
}

std::string settings_line(const TrainOptions& o) {
  char buf[160];
  if (o.ema > 0) {
    std::snprintf(buf, sizeof buf, "lr %.3g, weight decay %.3g, unit dropout %.2f, EMA %g", o.lr,
                  o.weight_decay, o.unit_dropout, o.ema);
  } else {
    std::snprintf(buf, sizeof buf, "lr %.3g, weight decay %.3g, unit dropout %.2f, EMA off", o.lr,
                  o.weight_decay, o.unit_dropout);
  }
  return buf;
}

TrainOptions choose_settings(const TrainOptions& base, const LrSweep& sweep, const Trial& trial,
                             std::string& report, bool regularised) {
  const auto t0 = Clock::now();
  const bool print = base.progress;
  const double share = base.max_seconds > 0 ? kSearchShare * base.max_seconds : 0.0;
  char line[320];
  add_line(report, print,
           "search (LR range test, then successive halving on the validation split):\n");
  TrainOptions quiet = base;
  quiet.search = false;
  quiet.progress = false;

  TrainOptions so = quiet;
  so.max_seconds = share * kSweepShare;
  const LrCurve curve = sweep(so, base.lr * kSweepLo, base.lr * kSweepHi, kSweepSteps);
  const LrSuggestion sug = suggest_lr(curve, base.lr);
  if (sug.ok) {
    std::snprintf(line, sizeof line,
                  "  LR range test: %zu steps, lr %.2g -> %.2g: loss lowest at lr %.3g, steepest "
                  "descent at lr %.3g; centre = lowest / 10 = %.3g%s\n",
                  curve.lr.size(), curve.lr.front(), curve.lr.back(), sug.min_loss_lr,
                  sug.steepest_lr, sug.centre,
                  sug.clamped ? " (clamped to default / 10 .. x 3)" : "");
  } else if (!curve.lr.empty()) {
    const auto lowest = std::min_element(curve.loss.begin(), curve.loss.end());
    const size_t i = static_cast<size_t>(lowest - curve.loss.begin());
    std::snprintf(line, sizeof line,
                  "  LR range test: %zu steps: no clear loss minimum (loss %.3f at lr %.2g, lowest "
                  "%.3f at lr %.2g, %.3f at lr %.2g); centre = the default lr %.3g\n",
                  curve.lr.size(), curve.loss.front(), curve.lr.front(), *lowest, curve.lr[i],
                  curve.loss.back(), curve.lr.back(), base.lr);
  } else {
    std::snprintf(line, sizeof line,
                  "  LR range test: no finite loss; centre = the default lr %.3g\n", base.lr);
  }
  add_line(report, print, line);

  size_t n = static_cast<size_t>(std::clamp(base.search_candidates, 2, 8));
  if (share > 0 && !curve.lr.empty() && curve.steps_per_epoch > 0) {
    // An epoch (plus its validation, ~30 %) per candidate in the first rung, which gets half of
    // what is left: fewer candidates when they would not get one.
    const double epoch_s =
        1.3 * curve.seconds / static_cast<double>(curve.lr.size()) * curve.steps_per_epoch;
    const double left = share - since(t0);
    const auto fit = static_cast<size_t>(std::max(0.0, left / 2 / epoch_s));
    if (fit < n) {
      n = std::max<size_t>(2, fit);
      std::snprintf(line, sizeof line,
                    "  budget: ~%.1f s per epoch, %.0f s left for the search: %zu candidates\n",
                    epoch_s, left, n);
      add_line(report, print, line);
    }
  }
  const auto cands = search_candidates(base, sug.centre, n, regularised);

  std::vector<size_t> alive(cands.size());
  for (size_t i = 0; i < cands.size(); ++i) alive[i] = i;
  std::vector<double> last(cands.size(), -1e9);
  int epochs = std::max(2, base.max_epochs / 8);
  int rungs_left = 0;
  for (size_t a = cands.size(); a > 1; a = std::max<size_t>(1, a / 2)) ++rungs_left;
  bool defaults_in_rung = true;
  for (int rung = 1; alive.size() > 1; ++rung, --rungs_left) {
    std::vector<std::pair<double, size_t>> scores;
    // Every rung gets an equal part of what is left of the share, its trials equal parts of that.
    const double rung_end = since(t0) + (share - since(t0)) / rungs_left;
    for (size_t k = 0; k < alive.size(); ++k) {
      const size_t i = alive[k];
      TrainOptions o = quiet;
      o.lr = cands[i].lr;
      o.weight_decay = cands[i].weight_decay;
      o.unit_dropout = cands[i].unit_dropout;
      o.max_epochs = epochs;
      o.patience = epochs;
      if (share > 0)
        o.max_seconds =
            std::max(0.5, (rung_end - since(t0)) / static_cast<double>(alive.size() - k));
      const double r2 = trial(o);
      last[i] = std::isfinite(r2) ? r2 : -1e9;
      scores.emplace_back(last[i], i);
      std::snprintf(line, sizeof line,
                    "  rung %d (%d epochs): lr %.2g  wd %.2g  dropout %.2f (%s) -> val R2 %.4f\n",
                    rung, epochs, o.lr, o.weight_decay, o.unit_dropout, cands[i].why.c_str(), r2);
      add_line(report, print, line);
    }
    defaults_in_rung = std::any_of(scores.begin(), scores.end(),
                                   [](const auto& sc) { return sc.second == 0; });
    std::stable_sort(scores.begin(), scores.end(),
                     [](const auto& a, const auto& b) { return a.first > b.first; });
    alive.clear();
    for (size_t k = 0; k < std::max<size_t>(1, scores.size() / 2); ++k)
      alive.push_back(scores[k].second);
    epochs *= 2;
  }
  // The defaults keep a tie: a winner within kMinGain of them in the same rung is noise.
  bool tie = false;
  if (alive[0] != 0 && defaults_in_rung && last[alive[0]] - last[0] < kMinGain) {
    tie = true;
    alive[0] = 0;
  }
  const Candidate& c = cands[alive[0]];
  TrainOptions won = base;
  won.lr = c.lr;
  won.weight_decay = c.weight_decay;
  won.unit_dropout = c.unit_dropout;
  won.search = false;
  if (base.max_seconds > 0) won.max_seconds = std::max(1.0, base.max_seconds - since(t0));
  if (alive[0] == 0) {
    std::snprintf(line, sizeof line,
                  "  chose %s: the defaults (validation R2 %.4f in the last rung%s)\n",
                  settings_line(won).c_str(), last[0],
                  tie ? "; the best other was within 0.002, not worth leaving them" : "");
  } else {
    std::snprintf(line, sizeof line,
                  "  chose %s: %s, validation R2 %.4f in the last rung (the defaults: %.4f in "
                  "theirs)\n",
                  settings_line(won).c_str(), c.why.c_str(), last[alive[0]], last[0]);
  }
  add_line(report, print, line);
  return won;
}

}  // namespace spikeflow::models::detail
