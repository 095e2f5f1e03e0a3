#include "models/settings_search.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <utility>
#include <vector>

namespace spikeflow::models::detail {

namespace {

/// Settings tried by the search: the defaults first, then lr x {1/3, 3}, stronger weight decay and
/// dropout (deterministic order).
std::vector<TrainOptions> search_candidates(const TrainOptions& base) {
  struct Delta {
    double lr, wd, drop;
  };
  const Delta grid[] = {{1, 1, 1},  {1.0 / 3, 1, 1},  {3, 1, 1},  {1.0 / 3, 10, 2},
                        {1, 10, 2}, {1.0 / 10, 1, 1}, {3, 10, 1}, {1.0 / 3, 1, 3}};
  std::vector<TrainOptions> out;
  for (const auto& d : grid) {
    if (static_cast<int>(out.size()) >= std::max(2, std::min(8, base.search_candidates))) break;
    TrainOptions o = base;
    o.lr = base.lr * d.lr;
    o.weight_decay = std::max(1e-4, base.weight_decay) * d.wd;
    o.unit_dropout = std::min(0.6, std::max(0.05, base.unit_dropout) * d.drop);
    o.search = false;
    o.progress = false;
    out.push_back(o);
  }
  return out;
}

}  // namespace

TrainOptions choose_settings(const TrainOptions& base,
                             const std::function<double(const TrainOptions&)>& trial,
                             std::string& report) {
  auto cands = search_candidates(base);
  const int rung1 = std::max(2, base.max_epochs / 8);
  const double budget = base.max_seconds > 0 ? 0.4 * base.max_seconds : 0.0;
  std::vector<std::pair<double, size_t>> scores;
  char line[200];
  report = "search (successive halving on the validation split):\n";
  int epochs = rung1;
  std::vector<size_t> alive(cands.size());
  for (size_t i = 0; i < cands.size(); ++i) alive[i] = i;
  for (int rung = 1; alive.size() > 1; ++rung) {
    scores.clear();
    for (size_t i : alive) {
      TrainOptions o = cands[i];
      o.max_epochs = epochs;
      o.patience = epochs;
      o.max_seconds = budget > 0 ? budget / 2 / static_cast<double>(alive.size()) : 0.0;
      const double r2 = trial(o);
      scores.emplace_back(std::isfinite(r2) ? r2 : -1e9, i);
      std::snprintf(line, sizeof line,
                    "  rung %d (%d epochs): lr %.2g  wd %.2g  dropout %.2f -> val R2 %.4f\n", rung,
                    epochs, o.lr, o.weight_decay, o.unit_dropout, r2);
      report += line;
      if (base.progress) std::fprintf(stderr, "%s", line);
    }
    std::stable_sort(scores.begin(), scores.end(),
                     [](auto& a, auto& b) { return a.first > b.first; });
    alive.clear();
    for (size_t k = 0; k < std::max<size_t>(1, scores.size() / 2); ++k)
      alive.push_back(scores[k].second);
    epochs *= 2;
  }
  TrainOptions won = base;
  won.lr = cands[alive[0]].lr;
  won.weight_decay = cands[alive[0]].weight_decay;
  won.unit_dropout = cands[alive[0]].unit_dropout;
  won.search = false;
  if (base.max_seconds > 0) won.max_seconds = std::max(1.0, base.max_seconds - budget);
  std::snprintf(line, sizeof line,
                "  chose lr %.3g, weight decay %.3g, unit dropout %.2f (best validation R2 of the "
                "last rung%s)\n",
                won.lr, won.weight_decay, won.unit_dropout,
                alive[0] == 0 ? ", = the defaults" : "");
  report += line;
  return won;
}

}  // namespace spikeflow::models::detail
