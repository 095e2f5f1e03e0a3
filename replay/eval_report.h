// Evaluation of decoded predictions against a session's true behaviour: R² and Pearson r per
// output dimension (overall and per trial), per-stage latency from the predictions' timing
// fields, and the two artefacts `spikeflow eval` / `spikeflow replay` write: a self-contained
// HTML report (inline SVG, no scripts, no network; replay/eval_report_html.cpp) and a CSV of every
// matched chunk (replay/eval_report.cpp, with the scoring).
// Truth for chunk seq is the behaviour at the chunk's centre, exactly as replay::build_dataset
// computes training targets (it is reused here), so offline and live scores are comparable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/latency_histogram.h"
#include "core/prediction.h"
#include "replay/session.h"

namespace spikeflow::replay {

/// Latency of one pipeline stage, from differences of core::ChunkTiming fields (host ns).
/// The stages partition the total: close + tokenize + queue + decode + publish = total.
struct StageLatency {
  std::string name;        ///< "close", "tokenize", "queue", "decode", "publish", "total"
  std::string definition;  ///< e.g. "decode_end_ns - decode_start_ns"
  core::LatencyHistogram histogram;
  std::vector<int64_t> samples_ns;  ///< the recorded durations, prediction order (for plots)
  uint64_t missing = 0;             ///< predictions where either timestamp is 0 (stage not reached)
  uint64_t negative = 0;  ///< differences < 0 (clock or stamping bug): counted, not recorded
};

/// Scores of one trial: the matched chunks whose centre lies in it (build_dataset's rule).
struct TrialEval {
  int32_t trial = -1;  ///< index into Session::trials
  int32_t condition = 0;
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  size_t chunks = 0;       ///< matched chunks in the trial
  std::vector<double> r2;  ///< per output dimension (0 where the truth is constant)
  /// Mean of r2 over the dimensions whose truth varies inside the trial: standard deviation in
  /// the trial at least 1% of that over all matched chunks. A reach along x has an (almost)
  /// constant vy whose R² is 0 by convention or a huge negative number from rounding noise;
  /// either would swamp the score. 0 when no dimension varies.
  double mean_r2 = 0.0;
  int dims_scored = 0;  ///< how many dimensions mean_r2 averages
};

/// One matched chunk; its truth and prediction are rows of EvalResult::truth / pred.
struct EvalChunk {
  int64_t seq = 0;
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  int32_t trial = -1;  ///< index into Session::trials, -1 between trials
  uint32_t flags = 0;  ///< the prediction's core::ChunkFlag bits
};

struct EvalResult {
  int64_t from_ns = 0;   ///< the evaluated range as asked for (clamped to the session by the
  int64_t to_ns = 0;     ///  dataset builder: whole chunks inside [from, to) only)
  int64_t width_ns = 0;  ///< chunk width
  std::vector<std::string> names;  ///< output dimension names (the session's behaviour names)
  int dim = 0;

  size_t chunks_in_range = 0;  ///< chunks build_dataset cuts from the range
  size_t matched = 0;          ///< chunks with a prediction (= chunks.size())
  size_t missing = 0;          ///< chunks in range without a prediction
  size_t outside_range = 0;    ///< predictions whose seq is not a chunk of the range
  size_t extent_mismatch = 0;  ///< seq in range but start/end differ (other width?): ignored
  size_t duplicates = 0;       ///< later predictions for an already matched seq: ignored
  /// Predictions holding NaN or inf in a value: never scored (one would make every score NaN).
  /// Callers that read the predictions from a file should refuse them earlier, naming the line.
  size_t non_finite = 0;
  int64_t first_non_finite_seq = -1;  ///< seq of the first of them (input order), -1 if none

  /// Per dimension over all matched chunks (core::r2_per_dim). With fewer than 2 matched chunks
  /// every score below is NaN: undefined, printed "n/a" (summary_text, the HTML report).
  std::vector<double> r2;
  std::vector<double> pearson;  ///< per dimension; 0 where either side is constant
  double mean_r2 = 0.0;
  double mean_pearson = 0.0;
  std::vector<TrialEval> trials;  ///< trials with at least one matched chunk, ascending

  std::vector<EvalChunk> chunks;  ///< matched chunks, ascending seq
  std::vector<float> truth;       ///< chunks.size() x dim, row-major
  std::vector<float> pred;        ///< chunks.size() x dim, row-major

  /// Over the matched predictions; empty when none of them carries any timing.
  std::vector<StageLatency> latency;
};

/// Matches predictions to the chunks of [from_ns, to_ns) by seq and scores them. Predictions
/// may come in any order; those with a non-finite value are counted (EvalResult::non_finite),
/// not matched. Throws std::invalid_argument when width_ns <= 0, the session has no
/// behaviour, or a prediction's output_dim differs from the session's behaviour dimension.
/// Pure function; safe to call concurrently.
EvalResult evaluate(const Session& session, const std::vector<core::Prediction>& predictions,
                    int64_t from_ns, int64_t to_ns, int64_t width_ns);

struct ReportOptions {
  std::string title = "spikeflow evaluation";
  /// Extra rows for the header table, in order (e.g. {"session", path}, {"model", identity}).
  std::vector<std::pair<std::string, std::string>> info;
  int trace_trials = 4;          ///< trials whose traces are drawn, evenly spaced over the scored
  double trace_window_s = 10.0;  ///< without trials: the first this-many seconds are drawn
};

/// Writes one self-contained HTML file: header table (range, chunk counts, R² and r per
/// dimension, latency percentiles per stage, options.info), decoded-vs-true traces per dimension
/// for a few trials, per-trial R² dots and per-stage latency histograms on log-x bins. Inline SVG
/// only: no scripts, no stylesheets or fonts fetched, no URLs. Throws std::runtime_error naming
/// the file on I/O failure.
void write_html_report(const EvalResult& result, const std::string& path,
                       const ReportOptions& options = ReportOptions{});

/// CSV, one row per matched chunk in seq order, header
/// "seq,start_ns,end_ns,trial,true_<name>...,pred_<name>...,flags" (with the default names:
/// seq,start_ns,end_ns,trial,true_vx,true_vy,pred_vx,pred_vy,flags); trial -1 between trials.
/// Throws std::runtime_error naming the file on I/O failure.
void write_predictions_csv(const EvalResult& result, const std::string& path);

/// A few lines of plain text with the headline numbers (for the CLI's stdout); undefined scores
/// read "n/a".
std::string summary_text(const EvalResult& result);

}  // namespace spikeflow::replay
