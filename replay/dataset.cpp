#include "replay/dataset.h"

#include <algorithm>
#include <stdexcept>

#include "core/chunk_flags.h"
#include "core/time.h"
#include "core/unit_map.h"

namespace spikeflow::replay {
namespace {

/// Behaviour linearly interpolated at t (ns), clamped to the first / last sample.
void interpolate(const Session& s, double t, float* out) {
  const size_t dim = s.behavior_names.size();
  const auto& ts = s.behavior_t_ns;
  const size_t n = ts.size();
  const auto it = std::upper_bound(ts.begin(), ts.end(), t,
                                   [](double v, int64_t x) { return v < static_cast<double>(x); });
  const auto hi = static_cast<size_t>(it - ts.begin());
  if (hi == 0 || hi == n) {
    const size_t row = hi == 0 ? 0 : n - 1;
    std::copy_n(s.behavior.begin() + static_cast<std::ptrdiff_t>(row * dim), dim, out);
    return;
  }
  const size_t lo = hi - 1;
  const double w = (t - static_cast<double>(ts[lo])) / static_cast<double>(ts[hi] - ts[lo]);
  for (size_t d = 0; d < dim; ++d) {
    const double a = s.behavior[lo * dim + d];
    const double b = s.behavior[hi * dim + d];
    out[d] = static_cast<float>(a + (b - a) * w);
  }
}

}  // namespace

core::DecodingDataset build_dataset(const Session& session, const DatasetOptions& options,
                                    DatasetStats* stats) {
  const int64_t w = options.width_ns;
  if (w <= 0) throw std::invalid_argument("build_dataset: width_ns must be > 0");
  if (session.units.size() != session.spike_times_ns.size()) {
    throw std::invalid_argument("build_dataset: session has " +
                                std::to_string(session.units.size()) + " units but " +
                                std::to_string(session.spike_times_ns.size()) + " spike lists");
  }
  const size_t dim = session.behavior_names.size();
  if (dim > 0 && session.behavior_t_ns.empty()) {
    throw std::invalid_argument("build_dataset: session has behaviour names but no samples");
  }
  if (session.behavior.size() != session.behavior_t_ns.size() * dim) {
    throw std::invalid_argument("build_dataset: behaviour size disagrees with its samples");
  }

  core::DecodingDataset ds;
  ds.width_ns = w;
  ds.units = options.unit_order.empty() ? session.units : options.unit_order;
  ds.output_dim = static_cast<int>(dim);
  ds.output_names = session.behavior_names;
  ds.chunks.clear();
  ds.targets.clear();
  ds.trial.clear();

  // Session unit index -> model unit index (kUnknown = dropped). Throws on duplicate keys.
  const core::UnitMap map(ds.units);
  std::vector<int32_t> model_of(session.units.size());
  for (size_t i = 0; i < session.units.size(); ++i) {
    model_of[i] = map.find(session.units[i].channel, session.units[i].unit);
  }

  const int64_t lo = std::max(options.from_ns, session.start_ns);
  const int64_t hi = std::min(options.to_ns, session.end_ns);
  if (stats) *stats = DatasetStats{};
  if (hi <= lo) return ds;
  const int64_t k0 = core::chunk_index(lo, w);
  const int64_t k1 = core::chunk_index(hi, w) - 1;  // last chunk with (k+1)*w <= hi
  if (k1 < k0) return ds;

  const auto n_chunks = static_cast<size_t>(k1 - k0 + 1);
  ds.chunks.resize(n_chunks);
  ds.targets.resize(n_chunks * dim);
  ds.trial.assign(n_chunks, -1);

  const auto spikes = merged_indexed_spikes(session, k0 * w, (k1 + 1) * w);
  size_t dropped = 0;
  size_t next = 0;
  size_t trial = 0;
  for (size_t c = 0; c < n_chunks; ++c) {
    core::TokenChunk& ch = ds.chunks[c];
    ch.seq = k0 + static_cast<int64_t>(c);
    ch.start_ns = ch.seq * w;
    ch.end_ns = ch.start_ns + w;
    size_t end = next;
    while (end < spikes.size() && spikes[end].t_ns < ch.end_ns) ++end;
    ch.unit.reserve(end - next);
    ch.offset_s.reserve(end - next);
    for (; next < end; ++next) {
      const int32_t m = model_of[spikes[next].unit_index];
      if (m == core::UnitMap::kUnknown) {
        ++dropped;
        continue;
      }
      ch.unit.push_back(m);
      ch.offset_s.push_back(core::offset_in_chunk_s(spikes[next].t_ns, ch.start_ns));
    }
    if (ch.empty()) core::set_flag(ch.flags, core::ChunkFlag::kEmpty);

    const int64_t centre_ns = ch.start_ns + w / 2;
    if (dim > 0) {
      interpolate(session, static_cast<double>(ch.start_ns) + 0.5 * static_cast<double>(w),
                  ds.targets.data() + c * dim);
    }
    // Trials are ascending and non-overlapping, and centres increase: walk them once.
    while (trial < session.trials.size() && session.trials[trial].end_ns <= centre_ns) ++trial;
    if (trial < session.trials.size() && session.trials[trial].start_ns <= centre_ns) {
      ds.trial[c] = static_cast<int32_t>(trial);
    }
  }
  if (stats) stats->dropped_spikes = dropped;
  return ds;
}

}  // namespace spikeflow::replay
