#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/flag_checks.h"
#include "cli/session_flags.h"
#include "cli/listen_csv.h"
#include "cli/split.h"
#include "core/file_check.h"
#include "core/time.h"
#include "pipeline/recording_replay.h"
#include "replay/eval_report.h"
#include "replay/recording_file.h"
#include "replay/session_file.h"

namespace spikeflow::cli {

namespace {

struct EvalArgs {
  std::string session, predictions, recording, report, csv;
  std::string part = "test";
  double train_fraction = 0.7, val_fraction = 0.1, width_ms = 50.0;
};

}  // namespace

Command add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  app.add_option("-s,--session", a->session, "session with the true behaviour")->required();
  auto* p =
      app.add_option("-p,--predictions", a->predictions, "CSV written by `spikeflow listen --out`");
  auto* r = app.add_option("-r,--recording", a->recording,
                           "recording of a live run (`run --record`), with timing");
  p->excludes(r);
  app.add_option("--report", a->report, "write a self-contained HTML report here");
  app.add_option("--csv", a->csv, "write predictions with truth, per chunk, here");
  add_part_flags(app, a->part, a->train_fraction, a->val_fraction);
  in_key_range(app.add_option("--width-ms", a->width_ms, "chunk width"), "chunking.width_ms")
      ->capture_default_str();
  return [a] {
    if (a->predictions.empty() == a->recording.empty()) {
      throw UsageError("eval needs --predictions or --recording");
    }
    const int64_t width_ns = static_cast<int64_t>(a->width_ms * core::kNsPerMs);
    replay::Session s = replay::load_session(a->session);
    const int64_t from = a->part == "test"
                             ? make_split(s, a->train_fraction, a->val_fraction, width_ns).test_from
                             : s.start_ns;
    std::vector<core::Prediction> preds;
    std::string model = "-";
    if (!a->recording.empty()) {
      auto rec = replay::read_recording(a->recording);
      if (!rec.problem.empty()) fmt::print("eval: warning: {}\n", rec.problem);
      pipeline::check_recording_has(rec, a->recording, pipeline::RecordingNeed::kPredictions);
      preds = std::move(rec.predictions);
      model = rec.model + " (" + rec.model_identity + ")";
    } else {
      for (const auto& r : read_listen_csv(a->predictions)) preds.push_back(r.prediction);
    }
    const std::string source = a->recording.empty() ? a->predictions : a->recording;
    const auto result = replay::evaluate(s, preds, from, s.end_ns, width_ns);
    if (result.non_finite >
        0) {  // a listen CSV is refused line by line when read; a recording here
      throw core::InputFileError(
          fmt::format("{}: {} predictions hold NaN or inf (first at seq {}); not scored", source,
                      result.non_finite, result.first_non_finite_seq));
    }
    fmt::print("{}", replay::summary_text(result));
    if (!a->report.empty()) {
      replay::ReportOptions o;
      o.info = {
          {"session", a->session}, {"predictions", source}, {"model", model}, {"part", a->part}};
      replay::write_html_report(result, a->report, o);
      fmt::print("eval: report written to {}\n", a->report);
    }
    if (!a->csv.empty()) replay::write_predictions_csv(result, a->csv);
    if (result.matched == 0) {
      throw ExitError(kMismatch,
                      preds.empty()
                          ? source + ": no predictions matched the session's chunks (it holds none)"
                          : fmt::format("{}: no predictions matched the session's chunks ({} "
                                        "read: {} outside --part {}, {} of another chunk width)",
                                        source, preds.size(), result.outside_range, a->part,
                                        result.extent_mismatch));
    }
    if (result.missing > 0) {
      throw ExitError(kMismatch,
                      fmt::format("{}: {} of {} chunks of the session have no prediction", source,
                                  result.missing, result.chunks_in_range));
    }
    return static_cast<int>(kOk);
  };
}

}  // namespace spikeflow::cli
