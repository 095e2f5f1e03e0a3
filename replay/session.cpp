#include "replay/session.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <sstream>
#include <stdexcept>
#include <unordered_set>

#include "core/time.h"

namespace spikeflow::replay {
namespace {

// Problems per category are capped so that a badly broken session (a million unsorted spikes)
// still gives a readable message; the count of the rest is reported.
constexpr size_t kMaxProblemsListed = 50;

std::string unit_name(const Session& s, size_t i) {
  std::ostringstream o;
  o << "unit " << i;
  if (i < s.units.size())
    o << " (channel " << s.units[i].channel << ", unit " << s.units[i].unit << ")";
  return o.str();
}

}  // namespace

size_t Session::num_spikes() const {
  size_t n = 0;
  for (const auto& t : spike_times_ns) n += t.size();
  return n;
}

void Session::validate(const std::string& what) const {
  std::vector<std::string> problems;
  auto add = [&](std::string p) { problems.push_back(std::move(p)); };

  if (end_ns < start_ns) {
    add("session end " + std::to_string(end_ns) + " ns is before its start " +
        std::to_string(start_ns) + " ns");
  }
  if (units.size() != spike_times_ns.size()) {
    add(std::to_string(units.size()) + " units but " + std::to_string(spike_times_ns.size()) +
        " spike-time lists");
  }
  {
    // Duplicate (channel, unit) keys: the unit map could not tell them apart.
    std::unordered_set<uint64_t> seen;
    for (size_t i = 0; i < units.size(); ++i) {
      const uint64_t key = (static_cast<uint64_t>(units[i].channel) << 16) | units[i].unit;
      if (!seen.insert(key).second) add("duplicate " + unit_name(*this, i));
    }
  }
  for (size_t i = 0; i < spike_times_ns.size(); ++i) {
    const auto& t = spike_times_ns[i];
    size_t unsorted = 0;
    size_t outside = 0;
    size_t first_unsorted = 0;
    size_t first_outside = 0;
    for (size_t j = 0; j < t.size(); ++j) {
      if (j > 0 && t[j] < t[j - 1] && unsorted++ == 0) first_unsorted = j;
      if ((t[j] < start_ns || t[j] >= end_ns) && outside++ == 0) first_outside = j;
    }
    if (unsorted > 0) {
      add(unit_name(*this, i) + ": spike times not ascending (" + std::to_string(unsorted) +
          " decreases, first at index " + std::to_string(first_unsorted) + ")");
    }
    if (outside > 0) {
      add(unit_name(*this, i) + ": " + std::to_string(outside) + " spikes outside the session [" +
          std::to_string(start_ns) + ", " + std::to_string(end_ns) + ") ns, first " +
          std::to_string(t[first_outside]) + " ns");
    }
  }

  const size_t dim = behavior_names.size();
  if (behavior.size() != behavior_t_ns.size() * dim) {
    add("behaviour has " + std::to_string(behavior.size()) + " values but " +
        std::to_string(behavior_t_ns.size()) + " samples x " + std::to_string(dim) +
        " dimensions need " + std::to_string(behavior_t_ns.size() * dim));
  }
  {
    size_t bad = 0;
    for (size_t j = 1; j < behavior_t_ns.size(); ++j) {
      if (behavior_t_ns[j] <= behavior_t_ns[j - 1] && bad++ == 0) {
        add("behaviour sample times not strictly ascending at sample " + std::to_string(j));
      }
    }
    if (bad > 1) add("behaviour sample times: " + std::to_string(bad - 1) + " more decreases");
  }
  {
    size_t bad = 0;
    for (size_t j = 0; j < behavior.size(); ++j) {
      if (!std::isfinite(behavior[j]) && bad++ == 0) {
        const size_t row = dim ? j / dim : j;
        const std::string name = dim ? behavior_names[j % dim] : std::string("?");
        add("behaviour value not finite (NaN/inf) at sample " + std::to_string(row) + ", '" + name +
            "'");
      }
    }
    if (bad > 1) add("behaviour: " + std::to_string(bad - 1) + " more non-finite values");
  }
  {
    std::unordered_set<std::string> names;
    for (const auto& n : behavior_names) {
      if (n.empty())
        add("empty behaviour name");
      else if (!names.insert(n).second)
        add("duplicate behaviour name '" + n + "'");
    }
  }
  for (size_t k = 0; k < trials.size(); ++k) {
    const Trial& tr = trials[k];
    if (tr.end_ns <= tr.start_ns) {
      add("trial " + std::to_string(k) + " is empty or reversed [" + std::to_string(tr.start_ns) +
          ", " + std::to_string(tr.end_ns) + ") ns");
    }
    if (tr.start_ns < start_ns || tr.end_ns > end_ns) {
      add("trial " + std::to_string(k) + " extends outside the session");
    }
    if (k > 0 && tr.start_ns < trials[k - 1].end_ns) {
      add("trial " + std::to_string(k) + " starts at " + std::to_string(tr.start_ns) +
          " ns, before trial " + std::to_string(k - 1) + " ends (" +
          std::to_string(trials[k - 1].end_ns) + " ns): trials overlap or are out of order");
    }
  }

  if (problems.empty()) return;
  std::ostringstream msg;
  msg << what << ": invalid session (" << problems.size() << " problem"
      << (problems.size() == 1 ? "" : "s") << "):";
  for (size_t i = 0; i < problems.size() && i < kMaxProblemsListed; ++i)
    msg << "\n  - " << problems[i];
  if (problems.size() > kMaxProblemsListed) {
    msg << "\n  ... and " << problems.size() - kMaxProblemsListed << " more";
  }
  throw std::runtime_error(msg.str());
}

std::vector<IndexedSpike> merged_indexed_spikes(const Session& s, int64_t from_ns, int64_t to_ns) {
  // k-way merge with a min-heap keyed on (time, unit index): O(N log U), ties by unit index.
  struct Head {
    int64_t t;
    uint32_t unit;
    size_t pos;
    size_t end;
  };
  auto later = [](const Head& a, const Head& b) {
    return a.t != b.t ? a.t > b.t : a.unit > b.unit;
  };
  std::vector<Head> heap;
  size_t total = 0;
  const size_t n_units = std::min(s.units.size(), s.spike_times_ns.size());
  heap.reserve(n_units);
  for (size_t u = 0; u < n_units; ++u) {
    const auto& t = s.spike_times_ns[u];
    const size_t b = static_cast<size_t>(std::lower_bound(t.begin(), t.end(), from_ns) - t.begin());
    const size_t e = static_cast<size_t>(std::lower_bound(t.begin(), t.end(), to_ns) - t.begin());
    if (b < e) {
      heap.push_back({t[b], static_cast<uint32_t>(u), b, e});
      total += e - b;
    }
  }
  std::make_heap(heap.begin(), heap.end(), later);
  std::vector<IndexedSpike> out;
  out.reserve(total);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), later);
    Head& h = heap.back();
    out.push_back({h.t, h.unit});
    if (++h.pos < h.end) {
      h.t = s.spike_times_ns[h.unit][h.pos];
      std::push_heap(heap.begin(), heap.end(), later);
    } else {
      heap.pop_back();
    }
  }
  return out;
}

std::vector<core::SpikeEvent> merged_events(const Session& s, int64_t from_ns, int64_t to_ns) {
  const auto indexed = merged_indexed_spikes(s, from_ns, to_ns);
  std::vector<core::SpikeEvent> out;
  out.reserve(indexed.size());
  for (const auto& x : indexed) {
    core::SpikeEvent e;
    e.t_ns = x.t_ns;
    e.channel = s.units[x.unit_index].channel;
    e.unit = s.units[x.unit_index].unit;
    out.push_back(e);
  }
  return out;
}

int64_t split_time_ns(const Session& s, double fraction, int64_t width_ns) {
  if (!(fraction >= 0.0 && fraction <= 1.0)) {
    throw std::invalid_argument("split_time_ns: fraction must be in [0, 1], got " +
                                std::to_string(fraction));
  }
  if (width_ns <= 0) {
    throw std::invalid_argument("split_time_ns: width_ns must be > 0, got " +
                                std::to_string(width_ns));
  }
  int64_t t = 0;
  if (!s.trials.empty()) {
    const auto n = static_cast<int64_t>(s.trials.size());
    const auto k = std::clamp<int64_t>(std::llround(fraction * static_cast<double>(n)), 0, n);
    t = k < n ? s.trials[static_cast<size_t>(k)].start_ns : s.end_ns;
  } else {
    t = s.start_ns +
        static_cast<int64_t>(std::floor(fraction * static_cast<double>(s.end_ns - s.start_ns)));
  }
  // Chunk-aligned so that no chunk straddles the train / test boundary.
  return core::chunk_index(t, width_ns) * width_ns;
}

}  // namespace spikeflow::replay
