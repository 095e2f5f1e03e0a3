#include "replay/eval_report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include "core/r2.h"
#include "replay/dataset.h"
#include "replay/synth_session.h"
#include "test_util.h"

namespace spikeflow::replay {
namespace {

using testing::TempDir;
constexpr int64_t kWidth = 50'000'000;

Session small_session(double duration_s = 30.0) {
  SynthOptions o;
  o.num_units = 16;
  o.duration_s = duration_s;
  o.seed = 3;
  return synthesize_session(o);
}

// One prediction per dataset chunk of [from, to), values = truth * gain + per-trial bias.
std::vector<core::Prediction> predictions_from_truth(const Session& s, int64_t from, int64_t to,
                                                     double gain = 1.0, double noise = 0.0) {
  DatasetOptions o;
  o.width_ns = kWidth;
  o.from_ns = from;
  o.to_ns = to;
  const auto ds = build_dataset(s, o);
  std::mt19937 rng(11);
  std::normal_distribution<double> n(0.0, 1.0);
  std::vector<core::Prediction> out;
  for (size_t c = 0; c < ds.size(); ++c) {
    core::Prediction p;
    p.seq = ds.chunks[c].seq;
    p.chunk_index = ds.chunks[c].seq;
    p.start_ns = ds.chunks[c].start_ns;
    p.end_ns = ds.chunks[c].end_ns;
    p.output_dim = ds.output_dim;
    for (int d = 0; d < ds.output_dim; ++d) {
      p.values[static_cast<size_t>(d)] =
          static_cast<float>(ds.target(c)[d] * gain + noise * n(rng));
    }
    out.push_back(p);
  }
  return out;
}

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1))
    ++n;
  return n;
}

TEST(EvalReportTest, perfect_predictions_score_r2_one) {
  const Session s = small_session();
  const auto preds = predictions_from_truth(s, INT64_MIN, INT64_MAX);
  const EvalResult r = evaluate(s, preds, INT64_MIN, INT64_MAX, kWidth);
  EXPECT_EQ(r.dim, 2);
  EXPECT_EQ(r.names, (std::vector<std::string>{"vx", "vy"}));
  EXPECT_EQ(r.chunks_in_range, preds.size());
  EXPECT_EQ(r.matched, preds.size());
  EXPECT_EQ(r.missing, 0u);
  ASSERT_EQ(r.r2.size(), 2u);
  for (double v : r.r2) EXPECT_NEAR(v, 1.0, 1e-12);
  for (double v : r.pearson) EXPECT_NEAR(v, 1.0, 1e-9);
  EXPECT_NEAR(r.mean_r2, 1.0, 1e-12);
  ASSERT_FALSE(r.trials.empty());
  for (const auto& t : r.trials) {
    EXPECT_GT(t.chunks, 0u);
    EXPECT_GE(t.dims_scored, 1) << "trial " << t.trial;
    EXPECT_NEAR(t.mean_r2, 1.0, 1e-12) << "trial " << t.trial;
    for (double v : t.r2) EXPECT_TRUE(v == 0.0 || std::abs(v - 1.0) < 1e-12) << v;  // 0: constant
  }
  EXPECT_TRUE(r.latency.empty());  // no timing in offline predictions
  // Order of the predictions does not matter.
  auto shuffled = preds;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937(5));
  EXPECT_EQ(evaluate(s, shuffled, INT64_MIN, INT64_MAX, kWidth).truth, r.truth);
}

TEST(EvalReportTest, per_trial_r2_is_computed_on_each_trials_chunks) {
  const Session s = small_session();
  const int64_t from = split_time_ns(s, 0.5, kWidth);
  const auto preds = predictions_from_truth(s, from, INT64_MAX, 0.8, 2.0);
  const EvalResult r = evaluate(s, preds, from, INT64_MAX, kWidth);

  DatasetOptions o;
  o.width_ns = kWidth;
  o.from_ns = from;
  const auto ds = build_dataset(s, o);
  ASSERT_EQ(r.matched, ds.size());
  EXPECT_EQ(r.chunks.front().start_ns, from);
  EXPECT_EQ(r.r2, core::r2_per_dim(ds.targets, r.pred, 2));
  // Independently: group the dataset's chunks by trial.
  size_t checked = 0;
  for (const auto& t : r.trials) {
    std::vector<float> truth, pred;
    for (size_t c = 0; c < ds.size(); ++c) {
      if (ds.trial[c] != t.trial) continue;
      truth.insert(truth.end(), ds.target(c), ds.target(c) + 2);
      pred.insert(pred.end(), preds[c].values.begin(), preds[c].values.begin() + 2);
    }
    EXPECT_EQ(t.chunks, truth.size() / 2);
    EXPECT_EQ(t.r2, core::r2_per_dim(truth, pred, 2)) << "trial " << t.trial;
    EXPECT_EQ(t.start_ns, s.trials[static_cast<size_t>(t.trial)].start_ns);
    EXPECT_EQ(t.condition, s.trials[static_cast<size_t>(t.trial)].condition);
    ++checked;
  }
  EXPECT_GT(checked, 3u);
  EXPECT_LT(r.mean_r2, 1.0);
  EXPECT_GT(r.mean_r2, 0.0);
}

// Zero (or one) matched chunk has no score: NaN, printed "n/a", never a 0 that reads as "no skill".
TEST(EvalReportTest, scores_are_undefined_without_two_matched_chunks) {
  const Session s = small_session();
  auto preds = predictions_from_truth(s, INT64_MIN, INT64_MAX);
  for (size_t keep : {size_t{0}, size_t{1}}) {
    const EvalResult r =
        evaluate(s, std::vector<core::Prediction>(preds.begin(), preds.begin() + keep), INT64_MIN,
                 INT64_MAX, kWidth);
    EXPECT_EQ(r.matched, keep);
    ASSERT_EQ(r.r2.size(), 2u);
    for (double v : r.r2) EXPECT_TRUE(std::isnan(v)) << v;
    for (double v : r.pearson) EXPECT_TRUE(std::isnan(v)) << v;
    EXPECT_TRUE(std::isnan(r.mean_r2));
    EXPECT_TRUE(std::isnan(r.mean_pearson));
    const std::string text = summary_text(r);
    EXPECT_NE(text.find("R2: mean n/a, vx n/a, vy n/a"), std::string::npos) << text;
    EXPECT_NE(text.find("Pearson r: mean n/a, vx n/a, vy n/a"), std::string::npos) << text;
    EXPECT_EQ(text.find("0.0000"), std::string::npos) << text;
  }
}

// A NaN prediction would make every score NaN (or, through Pearson's guards, a silent 0): it is
// counted and left out, and the rest are scored.
TEST(EvalReportTest, non_finite_predictions_are_counted_not_scored) {
  const Session s = small_session();
  auto preds = predictions_from_truth(s, INT64_MIN, INT64_MAX);
  const size_t n = preds.size();
  preds[5].values[0] = std::nanf("");
  preds[9].values[1] = INFINITY;
  const EvalResult r = evaluate(s, preds, INT64_MIN, INT64_MAX, kWidth);
  EXPECT_EQ(r.non_finite, 2u);
  EXPECT_EQ(r.first_non_finite_seq, preds[5].seq);
  EXPECT_EQ(r.matched, n - 2);
  EXPECT_EQ(r.missing, 2u);
  for (double v : r.r2) EXPECT_NEAR(v, 1.0, 1e-12);
  for (double v : r.pearson) EXPECT_NEAR(v, 1.0, 1e-9);
  EXPECT_NE(summary_text(r).find("2 non-finite"), std::string::npos) << summary_text(r);
}

TEST(EvalReportTest, unmatched_predictions_are_counted) {
  const Session s = small_session();
  auto preds = predictions_from_truth(s, INT64_MIN, INT64_MAX);
  const size_t n = preds.size();
  preds.erase(preds.begin() + 10, preds.begin() + 13);  // 3 missing
  preds.push_back(preds[20]);                           // duplicate
  core::Prediction outside = preds[0];
  outside.seq = -5;
  outside.chunk_index = -5;
  preds.push_back(outside);
  core::Prediction wrong = preds[30];
  preds.erase(preds.begin() + 30);
  wrong.end_ns += 1;  // another width: not matched, so its chunk is missing too
  preds.push_back(wrong);
  const EvalResult r = evaluate(s, preds, INT64_MIN, INT64_MAX, kWidth);
  EXPECT_EQ(r.chunks_in_range, n);
  EXPECT_EQ(r.matched, n - 4);
  EXPECT_EQ(r.missing, 4u);
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(r.outside_range, 1u);
  EXPECT_EQ(r.extent_mismatch, 1u);

  preds[0].output_dim = 3;
  EXPECT_THROW(evaluate(s, preds, INT64_MIN, INT64_MAX, kWidth), std::invalid_argument);
  EXPECT_THROW(evaluate(s, {}, INT64_MIN, INT64_MAX, 0), std::invalid_argument);
  Session no_behaviour = s;
  no_behaviour.behavior_names.clear();
  no_behaviour.behavior.clear();
  EXPECT_THROW(evaluate(no_behaviour, {}, INT64_MIN, INT64_MAX, kWidth), std::invalid_argument);
}

TEST(EvalReportTest, latency_per_stage_from_timing_fields) {
  const Session s = small_session();
  auto preds = predictions_from_truth(s, INT64_MIN, INT64_MAX);
  for (size_t i = 0; i < preds.size(); ++i) {
    core::ChunkTiming& t = preds[i].timing;
    t.trigger_arrival_ns = 1'000'000'000 + static_cast<int64_t>(i) * kWidth;
    t.close_ns = t.trigger_arrival_ns + 1'000;
    t.tokenize_ns = t.close_ns + 2'000;
    t.decode_start_ns = t.tokenize_ns + 10'000;
    t.decode_end_ns = t.decode_start_ns + 500'000 + static_cast<int64_t>(i % 10) * 10'000;
    t.publish_ns = i == 0 ? 0 : t.decode_end_ns + 3'000;  // first one never published
  }
  const EvalResult r = evaluate(s, preds, INT64_MIN, INT64_MAX, kWidth);
  ASSERT_EQ(r.latency.size(), 6u);
  const char* names[] = {"close", "tokenize", "queue", "decode", "publish", "total"};
  for (size_t k = 0; k < 6; ++k) EXPECT_EQ(r.latency[k].name, names[k]);
  EXPECT_NEAR(static_cast<double>(r.latency[0].histogram.percentile(0.5)), 1'000, 10);
  EXPECT_NEAR(static_cast<double>(r.latency[2].histogram.percentile(0.5)), 10'000, 100);
  EXPECT_NEAR(static_cast<double>(r.latency[3].histogram.max()), 590'000, 1);
  EXPECT_EQ(r.latency[3].histogram.count(), preds.size());
  EXPECT_EQ(r.latency[4].missing, 1u);
  EXPECT_EQ(r.latency[5].missing, 1u);
  EXPECT_EQ(r.latency[5].samples_ns.size(), preds.size() - 1);
  EXPECT_NE(summary_text(r).find("latency decode"), std::string::npos) << summary_text(r);

  TempDir dir;
  write_html_report(r, dir.file("lat.html"));
  const std::string html = slurp(dir.file("lat.html"));
  EXPECT_NE(html.find("decode (decode_end_ns - decode_start_ns)"), std::string::npos);
  EXPECT_NE(html.find("p99 "), std::string::npos);
}

TEST(EvalReportTest, html_report_and_csv) {
  const Session s = small_session();
  const int64_t from = split_time_ns(s, 0.5, kWidth);
  const auto preds = predictions_from_truth(s, from, INT64_MAX, 0.9, 1.5);
  const EvalResult r = evaluate(s, preds, from, INT64_MAX, kWidth);
  TempDir dir;
  ReportOptions o;
  o.title = "Synthetic <test> run";
  o.info = {{"session", "synth seed 3"}, {"model", "possm & friends"}};
  const std::string html_path = dir.file("report.html");
  const std::string csv_path = dir.file("predictions.csv");
  write_html_report(r, html_path, o);
  write_predictions_csv(r, csv_path);

  ASSERT_TRUE(std::filesystem::exists(html_path));
  const std::string html = slurp(html_path);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  EXPECT_EQ(count(html, "<svg"), count(html, "</svg>"));
  EXPECT_GE(count(html, "<svg"), 2u * 4u + 1u);  // 4 trials x (vx, vy) + per-trial R²
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4f", r.mean_r2);
  EXPECT_NE(html.find(buf), std::string::npos) << "mean R² " << buf;
  std::snprintf(buf, sizeof buf, "%.4f", r.r2[1]);
  EXPECT_NE(html.find(buf), std::string::npos) << "R² vy " << buf;
  EXPECT_NE(html.find("Synthetic &lt;test&gt; run"), std::string::npos);  // escaped
  EXPECT_NE(html.find("possm &amp; friends"), std::string::npos);
  EXPECT_NE(html.find("R\u00b2 per trial"), std::string::npos);
  std::string lower = html;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  EXPECT_EQ(lower.find("http"), std::string::npos);  // self-contained: no URLs at all
  EXPECT_EQ(lower.find("<script"), std::string::npos);

  const std::string csv = slurp(csv_path);
  std::istringstream lines(csv);
  std::string line;
  std::getline(lines, line);
  EXPECT_EQ(line, "seq,start_ns,end_ns,trial,true_vx,true_vy,pred_vx,pred_vy,flags");
  size_t rows = 0;
  while (std::getline(lines, line)) {
    if (rows == 0) {
      std::istringstream f(line);
      std::string cell;
      std::vector<std::string> cells;
      while (std::getline(f, cell, ',')) cells.push_back(cell);
      ASSERT_EQ(cells.size(), 9u);
      EXPECT_EQ(std::stoll(cells[0]), r.chunks[0].seq);
      EXPECT_EQ(std::stoll(cells[1]), r.chunks[0].start_ns);
      EXPECT_FLOAT_EQ(std::stof(cells[4]), r.truth[0]);
      EXPECT_FLOAT_EQ(std::stof(cells[7]), r.pred[1]);
    }
    ++rows;
  }
  EXPECT_EQ(rows, r.matched);

  EXPECT_THROW(write_html_report(r, dir.file("no/such/dir/r.html")), std::runtime_error);
}

TEST(EvalReportTest, continuous_session_without_trials) {
  Session s = small_session();
  s.trials.clear();
  const auto preds = predictions_from_truth(s, INT64_MIN, INT64_MAX);
  const EvalResult r = evaluate(s, preds, INT64_MIN, INT64_MAX, kWidth);
  EXPECT_TRUE(r.trials.empty());
  for (const auto& c : r.chunks) EXPECT_EQ(c.trial, -1);
  TempDir dir;
  write_html_report(r, dir.file("r.html"));
  write_predictions_csv(r, dir.file("p.csv"));
  const std::string html = slurp(dir.file("r.html"));
  EXPECT_NE(html.find("first 10 s"), std::string::npos);
  EXPECT_NE(html.find("No trials in the evaluated range"), std::string::npos);
  EXPECT_NE(slurp(dir.file("p.csv")).find(",-1,"), std::string::npos);
}

TEST(EvalReportTest, report_generation_time_for_300_s) {
  const Session s = small_session(300.0);
  auto preds = predictions_from_truth(s, INT64_MIN, INT64_MAX, 0.9, 2.0);
  for (size_t i = 0; i < preds.size(); ++i) {
    core::ChunkTiming& t = preds[i].timing;
    t.trigger_arrival_ns = 1'000'000 + static_cast<int64_t>(i) * kWidth;
    t.close_ns = t.trigger_arrival_ns + 800 + static_cast<int64_t>(i % 13) * 50;
    t.tokenize_ns = t.close_ns + 4'000;
    t.decode_start_ns = t.tokenize_ns + 20'000 + static_cast<int64_t>(i % 7) * 3'000;
    t.decode_end_ns = t.decode_start_ns + 400'000 + static_cast<int64_t>(i % 101) * 9'000;
    t.publish_ns = t.decode_end_ns + 6'000;
  }
  TempDir dir;
  const auto t0 = std::chrono::steady_clock::now();
  const EvalResult r = evaluate(s, preds, INT64_MIN, INT64_MAX, kWidth);
  const auto t1 = std::chrono::steady_clock::now();
  write_html_report(r, dir.file("r.html"));
  write_predictions_csv(r, dir.file("p.csv"));
  const auto t2 = std::chrono::steady_clock::now();
  const double eval_ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  const double write_ms = std::chrono::duration<double, std::milli>(t2 - t1).count();
  std::printf("evaluate(300 s, %zu chunks, %zu trials): %.1f ms; HTML (%ju bytes) + CSV: %.1f ms\n",
              r.matched, r.trials.size(), eval_ms,
              static_cast<uintmax_t>(std::filesystem::file_size(dir.file("r.html"))), write_ms);
  RecordProperty("eval_ms", std::to_string(eval_ms));
  RecordProperty("report_write_ms", std::to_string(write_ms));
  EXPECT_EQ(r.matched, 6000u);
}

}  // namespace
}  // namespace spikeflow::replay
