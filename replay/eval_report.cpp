#include "replay/eval_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "core/r2.h"
#include "replay/dataset.h"
#include "replay/eval_report_text.h"

namespace spikeflow::replay {

namespace eval_text {

std::string fmt(double v, const char* spec) {
  if (!std::isfinite(v)) return "n/a";
  char b[64];
  std::snprintf(b, sizeof b, spec, v);
  return b;
}

void write_text_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error(path + ": cannot open for writing");
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  out.close();
  if (!out) throw std::runtime_error(path + ": write failed");
}

}  // namespace eval_text

namespace {

using eval_text::fmt;
using eval_text::write_text_file;

// ---------------------------------------------------------------------------------------------
// Scoring

std::vector<double> pearson_per_dim(const std::vector<float>& truth, const std::vector<float>& pred,
                                    int dim) {
  const auto d_sz = static_cast<size_t>(dim);
  const size_t n = d_sz ? truth.size() / d_sz : 0;
  std::vector<double> out(d_sz, 0.0);
  if (n < 2) return out;
  for (size_t d = 0; d < d_sz; ++d) {
    double mt = 0.0, mp = 0.0;
    for (size_t i = 0; i < n; ++i) {
      mt += truth[i * d_sz + d];
      mp += pred[i * d_sz + d];
    }
    mt /= static_cast<double>(n);
    mp /= static_cast<double>(n);
    double stp = 0.0, stt = 0.0, spp = 0.0;
    for (size_t i = 0; i < n; ++i) {
      const double a = truth[i * d_sz + d] - mt;
      const double b = pred[i * d_sz + d] - mp;
      stp += a * b;
      stt += a * a;
      spp += b * b;
    }
    out[d] = (stt > 0.0 && spp > 0.0) ? stp / std::sqrt(stt * spp) : 0.0;
  }
  return out;
}

/// A trial's dimension counts in its mean R² when its truth's standard deviation in the trial is
/// at least this fraction of the standard deviation over the whole evaluated range.
constexpr double kMinTrialStdFraction = 0.01;

std::vector<double> std_per_dim(const std::vector<float>& x, int dim) {
  const auto d_sz = static_cast<size_t>(dim);
  const size_t n = d_sz ? x.size() / d_sz : 0;
  std::vector<double> out(d_sz, 0.0);
  if (n == 0) return out;
  for (size_t d = 0; d < d_sz; ++d) {
    double m = 0.0;
    for (size_t i = 0; i < n; ++i) m += x[i * d_sz + d];
    m /= static_cast<double>(n);
    double ss = 0.0;
    for (size_t i = 0; i < n; ++i) ss += (x[i * d_sz + d] - m) * (x[i * d_sz + d] - m);
    out[d] = std::sqrt(ss / static_cast<double>(n));
  }
  return out;
}

double mean_of(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

struct StageDef {
  const char* name;
  const char* definition;
  int64_t core::ChunkTiming::*from;
  int64_t core::ChunkTiming::*to;
};

constexpr StageDef kStages[] = {
    {"close", "close_ns - trigger_arrival_ns", &core::ChunkTiming::trigger_arrival_ns,
     &core::ChunkTiming::close_ns},
    {"tokenize", "tokenize_ns - close_ns", &core::ChunkTiming::close_ns,
     &core::ChunkTiming::tokenize_ns},
    {"queue", "decode_start_ns - tokenize_ns", &core::ChunkTiming::tokenize_ns,
     &core::ChunkTiming::decode_start_ns},
    {"decode", "decode_end_ns - decode_start_ns", &core::ChunkTiming::decode_start_ns,
     &core::ChunkTiming::decode_end_ns},
    {"publish", "publish_ns - decode_end_ns", &core::ChunkTiming::decode_end_ns,
     &core::ChunkTiming::publish_ns},
    {"total", "publish_ns - trigger_arrival_ns", &core::ChunkTiming::trigger_arrival_ns,
     &core::ChunkTiming::publish_ns},
};

bool has_timing(const core::ChunkTiming& t) {
  return t.trigger_arrival_ns || t.close_ns || t.tokenize_ns || t.decode_start_ns ||
         t.decode_end_ns || t.publish_ns;
}

// ---------------------------------------------------------------------------------------------
// Matching and per-trial scores

/// The behaviour dimension to score; throws std::invalid_argument on a bad width, a session
/// without behaviour or a prediction of another dimension.
int checked_dim(const Session& session, const std::vector<core::Prediction>& predictions,
                int64_t width_ns) {
  if (width_ns <= 0) {
    throw std::invalid_argument("evaluate: width_ns must be > 0, got " + std::to_string(width_ns));
  }
  const int dim = session.behavior_dim();
  if (dim == 0)
    throw std::invalid_argument("evaluate: the session has no behaviour to score against");
  for (const auto& p : predictions) {
    if (p.output_dim != dim) {
      throw std::invalid_argument("evaluate: prediction seq " + std::to_string(p.seq) + " has " +
                                  std::to_string(p.output_dim) +
                                  " outputs but the session's behaviour has " +
                                  std::to_string(dim));
    }
  }
  return dim;
}

/// For each chunk of ds, the index of its prediction (-1: none). The first prediction with the
/// chunk's seq and extent wins; the others are counted in r (outside_range, extent_mismatch,
/// duplicates).
std::vector<int64_t> match_predictions(const core::DecodingDataset& ds,
                                       const std::vector<core::Prediction>& predictions,
                                       EvalResult& r) {
  // Dataset chunks are consecutive in seq: position = chunk index - first seq. Predictions carry
  // their chunk's index on the device clock (chunk_index; seq is the wire counter). Only the
  // first epoch is on the session's clock: a live run whose device clock jumped is scored up to
  // the jump, the rest counted outside the range.
  const int64_t seq0 = ds.chunks.empty() ? 0 : ds.chunks.front().seq;
  std::vector<int64_t> pred_of(ds.size(), -1);
  for (size_t i = 0; i < predictions.size(); ++i) {
    const auto& p = predictions[i];
    if (!std::all_of(p.values.begin(), p.values.begin() + r.dim,
                     [](float v) { return std::isfinite(v); })) {
      if (r.non_finite++ == 0) r.first_non_finite_seq = p.seq;
      continue;
    }
    const int64_t off = p.chunk_index - seq0;
    if (p.epoch != predictions.front().epoch || off < 0 || off >= static_cast<int64_t>(ds.size())) {
      ++r.outside_range;
      continue;
    }
    const auto c = static_cast<size_t>(off);
    if (p.start_ns != ds.chunks[c].start_ns || p.end_ns != ds.chunks[c].end_ns) {
      ++r.extent_mismatch;
      continue;
    }
    if (pred_of[c] >= 0) {
      ++r.duplicates;
      continue;
    }
    pred_of[c] = static_cast<int64_t>(i);
  }
  return pred_of;
}

/// The matched chunks with their truth and prediction rows -> r.chunks, r.truth, r.pred (seq
/// order); chunks without a prediction are counted in r.missing.
void collect_matched(const core::DecodingDataset& ds,
                     const std::vector<core::Prediction>& predictions,
                     const std::vector<int64_t>& pred_of, EvalResult& r) {
  const auto d_sz = static_cast<size_t>(r.dim);
  for (size_t c = 0; c < ds.size(); ++c) {
    if (pred_of[c] < 0) {
      ++r.missing;
      continue;
    }
    const auto& p = predictions[static_cast<size_t>(pred_of[c])];
    r.chunks.push_back(
        {ds.chunks[c].seq, ds.chunks[c].start_ns, ds.chunks[c].end_ns, ds.trial[c], p.flags});
    r.truth.insert(r.truth.end(), ds.target(c), ds.target(c) + d_sz);
    r.pred.insert(r.pred.end(), p.values.begin(), p.values.begin() + r.dim);
  }
  r.matched = r.chunks.size();
}

/// Scores of one trial from the matched chunks [b, e) (all in that trial).
TrialEval score_trial(const Session& session, const EvalResult& r, size_t b, size_t e,
                      const std::vector<double>& overall_sd) {
  const auto d_sz = static_cast<size_t>(r.dim);
  TrialEval t;
  t.trial = r.chunks[b].trial;
  const Trial& tr = session.trials[static_cast<size_t>(t.trial)];
  t.condition = tr.condition;
  t.start_ns = tr.start_ns;
  t.end_ns = tr.end_ns;
  t.chunks = e - b;
  const std::vector<float> tt(r.truth.begin() + static_cast<std::ptrdiff_t>(b * d_sz),
                              r.truth.begin() + static_cast<std::ptrdiff_t>(e * d_sz));
  const std::vector<float> pp(r.pred.begin() + static_cast<std::ptrdiff_t>(b * d_sz),
                              r.pred.begin() + static_cast<std::ptrdiff_t>(e * d_sz));
  t.r2 = core::r2_per_dim(tt, pp, r.dim);
  double sum = 0.0;
  const std::vector<double> sd = std_per_dim(tt, r.dim);
  for (size_t d = 0; d < d_sz; ++d) {
    if (sd[d] > 0.0 && sd[d] >= kMinTrialStdFraction * overall_sd[d]) {
      sum += t.r2[d];
      ++t.dims_scored;
    }
  }
  t.mean_r2 = t.dims_scored ? sum / t.dims_scored : 0.0;
  return t;
}

/// Per trial with at least one matched chunk -> r.trials. Matched chunks are in seq order and
/// trials ascend, so each trial is one run of chunks.
void score_trials(const Session& session, EvalResult& r) {
  const std::vector<double> overall_sd = std_per_dim(r.truth, r.dim);
  for (size_t b = 0; b < r.chunks.size();) {
    size_t e = b;
    while (e < r.chunks.size() && r.chunks[e].trial == r.chunks[b].trial) ++e;
    if (r.chunks[b].trial >= 0) r.trials.push_back(score_trial(session, r, b, e, overall_sd));
    b = e;
  }
}

/// Per-stage latency over the matched predictions (kStages); empty when none carries timing.
std::vector<StageLatency> stage_latencies(const std::vector<core::Prediction>& predictions,
                                          const std::vector<int64_t>& pred_of) {
  std::vector<StageLatency> out;
  bool any_timing = false;
  for (const auto& pi : pred_of) {
    if (pi >= 0 && has_timing(predictions[static_cast<size_t>(pi)].timing)) any_timing = true;
  }
  if (!any_timing) return out;
  for (const StageDef& def : kStages) {
    StageLatency s;
    s.name = def.name;
    s.definition = def.definition;
    for (const auto& pi : pred_of) {
      if (pi < 0) continue;
      const core::ChunkTiming& t = predictions[static_cast<size_t>(pi)].timing;
      const int64_t a = t.*def.from;
      const int64_t b = t.*def.to;
      if (a == 0 || b == 0) {
        ++s.missing;
      } else if (b < a) {
        ++s.negative;
      } else {
        s.histogram.record(b - a);
        s.samples_ns.push_back(b - a);
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

EvalResult evaluate(const Session& session, const std::vector<core::Prediction>& predictions,
                    int64_t from_ns, int64_t to_ns, int64_t width_ns) {
  const int dim = checked_dim(session, predictions, width_ns);
  DatasetOptions dso;
  dso.width_ns = width_ns;
  dso.from_ns = from_ns;
  dso.to_ns = to_ns;
  const core::DecodingDataset ds = build_dataset(session, dso);

  EvalResult r;
  r.from_ns = from_ns;
  r.to_ns = to_ns;
  r.width_ns = width_ns;
  r.names = session.behavior_names;
  r.dim = dim;
  r.chunks_in_range = ds.size();
  const std::vector<int64_t> pred_of = match_predictions(ds, predictions, r);
  collect_matched(ds, predictions, pred_of, r);
  r.r2 = core::r2_per_dim(r.truth, r.pred, dim);
  r.pearson = pearson_per_dim(r.truth, r.pred, dim);
  r.mean_r2 = mean_of(r.r2);
  r.mean_pearson = mean_of(r.pearson);
  if (r.matched < 2) {
    // Nothing (or one chunk) to correlate: a score of 0 would read as "no skill", not "no data".
    const double undefined = std::numeric_limits<double>::quiet_NaN();
    std::fill(r.r2.begin(), r.r2.end(), undefined);
    std::fill(r.pearson.begin(), r.pearson.end(), undefined);
    r.mean_r2 = r.mean_pearson = undefined;
  }
  score_trials(session, r);
  r.latency = stage_latencies(predictions, pred_of);
  return r;
}

void write_predictions_csv(const EvalResult& r, const std::string& path) {
  std::string out = "seq,start_ns,end_ns,trial";
  for (const auto& n : r.names) out += ",true_" + n;
  for (const auto& n : r.names) out += ",pred_" + n;
  out += ",flags\n";
  const auto d_sz = static_cast<size_t>(r.dim);
  char b[64];
  for (size_t i = 0; i < r.chunks.size(); ++i) {
    const EvalChunk& c = r.chunks[i];
    out += std::to_string(c.seq) + ',' + std::to_string(c.start_ns) + ',' +
           std::to_string(c.end_ns) + ',' + std::to_string(c.trial);
    for (const auto* v : {&r.truth, &r.pred}) {
      for (size_t d = 0; d < d_sz; ++d) {
        std::snprintf(b, sizeof b, ",%.9g", static_cast<double>((*v)[i * d_sz + d]));
        out += b;
      }
    }
    out += ',' + std::to_string(c.flags) + '\n';
  }
  write_text_file(path, out);
}

std::string summary_text(const EvalResult& r) {
  std::ostringstream o;
  o << "chunks: " << r.matched << " matched of " << r.chunks_in_range << " in range (" << r.missing
    << " missing, " << r.outside_range << " outside, " << r.extent_mismatch << " other extent, "
    << r.duplicates << " duplicates"
    << (r.non_finite ? ", " + std::to_string(r.non_finite) + " non-finite" : std::string())
    << ")\n";
  o << "R2: mean " << fmt(r.mean_r2);
  for (size_t d = 0; d < r.r2.size(); ++d) o << ", " << r.names[d] << ' ' << fmt(r.r2[d]);
  o << "\nPearson r: mean " << fmt(r.mean_pearson);
  for (size_t d = 0; d < r.pearson.size(); ++d) o << ", " << r.names[d] << ' ' << fmt(r.pearson[d]);
  o << "\ntrials scored: " << r.trials.size() << '\n';
  for (const StageLatency& s : r.latency) {
    if (s.histogram.count() == 0) continue;
    o << "latency " << s.name << ": " << s.histogram.summary_us() << '\n';
  }
  return o.str();
}

}  // namespace spikeflow::replay
