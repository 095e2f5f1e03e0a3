#include "pipeline/training_run.h"

#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "core/decoding_dataset.h"
#include "core/r2.h"
#include "models/baselines.h"
#include "models/decode_dataset.h"
#include "models/load_decoder.h"
#include "pipeline/data_split.h"
#include "replay/dataset.h"

namespace spikeflow::pipeline {
namespace {


R2Row score(std::string name, models::StreamingDecoder& decoder,
            const core::DecodingDataset& test) {
  return {std::move(name),
          core::r2_per_dim(test.targets, models::decode_dataset(decoder, test), test.output_dim)};
}

std::string row_line(const R2Row& row) {
  std::string dims;
  for (double v : row.r2) dims += fmt::format(" {:6.3f}", v);
  return fmt::format("  {:<14} R2 mean {:6.3f}  per dim{}\n", row.name, row.mean(), dims);
}

}  // namespace

ReportSink stdout_sink() {
  return [](std::string_view text) {
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fflush(stdout);
  };
}

double R2Row::mean() const {
  double m = 0;
  for (double v : r2) m += v;
  return r2.empty() ? 0.0 : m / static_cast<double>(r2.size());
}

TrainRunReport run_training(const replay::Session& s, const std::string& checkpoint,
                            const TrainRunOptions& o, const ReportSink& print) {
  const auto width_ns = static_cast<int64_t>(std::llround(o.width_ms * 1e6));
  const Split sp = make_split(s, o.train_fraction, o.val_fraction, width_ns);
  const auto train = build_range(s, width_ns, sp.train_from, sp.val_from);
  const auto val = build_range(s, width_ns, sp.val_from, sp.test_from);
  const auto test = build_range(s, width_ns, sp.test_from, sp.test_to);
  TrainRunReport r;
  r.train_chunks = train.size();
  r.val_chunks = val.size();
  r.test_chunks = test.size();
  print(fmt::format("train: {} units; chunks train {} / validation {} / test {} ({:.0f} ms)\n",
                    s.num_units(), train.size(), val.size(), test.size(), o.width_ms));
  r.result = models::train_possm(train, val, o.train, checkpoint);
  if (!r.result.search_report.empty()) print(r.result.search_report);
  print(fmt::format(
      "train: best epoch {} of {}, validation R2 {:.3f}, {:.1f} s, {} parameters -> {}\n",
      r.result.best_epoch, r.result.epochs_run, r.result.best_val_r2, r.result.seconds,
      r.result.num_parameters, checkpoint));
  print(fmt::format("held-out test ({} chunks, causal, streamed chunk by chunk):\n", test.size()));
  {
    auto dec = models::load_decoder(checkpoint, models::RuntimeOptions{});
    r.test.push_back(score("possm", *dec, test));
    print(row_line(r.test.back()));
  }
  if (o.baselines || !o.baselines_out.empty()) {
    // The classic decoders a lab compares against, fitted on the same training chunks.
    auto ridge = models::fit_ridge(train);
    auto kalman = models::fit_kalman(train);
    if (o.baselines) {
      r.test.push_back(score("ridge (250 ms)", *ridge.decoder, test));
      print(row_line(r.test.back()));
      r.test.push_back(score("kalman", *kalman.decoder, test));
      print(row_line(r.test.back()));
    }
    if (!o.baselines_out.empty()) {
      models::save_baseline(*ridge.decoder, o.baselines_out + ".ridge.ckpt");
      models::save_baseline(*kalman.decoder, o.baselines_out + ".kalman.ckpt");
    }
  }
  return r;
}

CalibrateRunReport run_calibration(const replay::Session& s, const std::string& label,
                                   const std::string& checkpoint, const CalibrateRunOptions& o,
                                   const ReportSink& print) {
  const std::string base_desc = models::describe_possm_checkpoint(o.calibrate.base);
  const int64_t width_ns =
      models::load_decoder(o.calibrate.base, models::RuntimeOptions{})->chunk_width_ns();
  const Split sp = make_split(s, 1.0 - o.test_fraction, 0.0, width_ns);
  // calibration_s <= 0: all of the session before its held-out part (a block recorded live).
  const int64_t cal_chunks = o.calibration_s > 0
                                 ? static_cast<int64_t>(o.calibration_s * 1e9) / width_ns
                                 : (sp.test_from - s.start_ns) / width_ns;
  const double calibration_s = static_cast<double>(cal_chunks * width_ns) / 1e9;
  const int64_t cal_end = s.start_ns + cal_chunks * width_ns;
  if (cal_end > sp.test_from) {
    throw std::runtime_error(fmt::format(
        "calibrate: the {:.0f} s calibration block overlaps the held-out last {:.0f}% of '{}'",
        calibration_s, o.test_fraction * 100, label));
  }
  const int64_t val_from =
      s.start_ns + static_cast<int64_t>(cal_chunks * (1.0 - o.val_share)) * width_ns;
  const auto train = build_range(s, width_ns, s.start_ns, val_from);
  const auto val = build_range(s, width_ns, val_from, cal_end);
  const auto all_cal = build_range(s, width_ns, s.start_ns, cal_end);
  const auto test = build_range(s, width_ns, sp.test_from, sp.test_to);
  CalibrateRunReport r;
  r.calibration_chunks = all_cal.size();
  r.train_chunks = train.size();
  r.val_chunks = val.size();
  r.test_chunks = test.size();
  print(base_desc);
  print(fmt::format(
      "calibrate: {}: {} units; calibration {:.0f} s = {} chunks (train {} / early-stopping {}), "
      "held-out test {} chunks (last {:.0f}%)\n",
      label, s.num_units(), calibration_s, all_cal.size(), train.size(), val.size(),
      test.size(), o.test_fraction * 100));
  const models::TrainSession ts{std::filesystem::path(label).stem().string(), &train, &val};
  r.result = models::calibrate_possm(ts, o.calibrate, checkpoint);
  const auto& cr = r.result;
  if (!cr.search_report.empty()) print(cr.search_report);
  std::string stages =
      fmt::format("calibrate: stage 1 (unit re-identification) validation R2 {:.3f} in {} epochs",
                  cr.reid.best_val_r2, cr.reid.epochs_run);
  if (cr.finetune.epochs_run > 0)
    stages += fmt::format("; stage 2 (all layers) {:.3f} in {} epochs -> {}",
                          cr.finetune.best_val_r2, cr.finetune.epochs_run,
                          cr.finetune_kept ? "kept" : "not kept (stage 1 was better)");
  print(stages + "\n");

  {
    auto dec = models::load_decoder(checkpoint, models::RuntimeOptions{});
    r.test.push_back(score("calibrated", *dec, test));
  }
  if (o.scratch) {
    models::TrainOptions t = o.calibrate.train;
    t.model = cr.base_config;  // the same architecture, from random weights
    t.max_epochs = o.calibrate.reid_epochs + o.calibrate.finetune_epochs;
    const std::string tmp = checkpoint + ".scratch.tmp";
    models::train_possm(train, val, t, tmp);
    auto dec = models::load_decoder(tmp, models::RuntimeOptions{});
    r.test.push_back(score("scratch", *dec, test));
    std::filesystem::remove(tmp);
  }
  auto ridge = models::fit_ridge(all_cal);
  r.test.push_back(score("ridge (250 ms)", *ridge.decoder, test));
  auto kalman = models::fit_kalman(all_cal);
  r.test.push_back(score("kalman", *kalman.decoder, test));
  print(fmt::format("held-out test, all fitted on the same {:.0f} s calibration block:\n",
                    calibration_s));
  for (size_t i = 0; i < r.test.size(); ++i) {
    print(row_line(r.test[i]));
    if (r.test[i].mean() > r.test[r.best].mean()) r.best = i;
  }
  if (r.best == 0) {
    print(fmt::format("calibrate: the calibrated model is best on held-out data -> {}\n",
                      checkpoint));
  } else {
    const R2Row& best = r.test[r.best];
    print(fmt::format(
        "calibrate: NOTE {} beats the calibrated model on held-out data (by {:.3f} R2); {} is "
        "written anyway, consider using {} for this session\n",
        best.name, best.mean() - r.test[0].mean(), checkpoint, best.name));
  }
  return r;
}

}  // namespace spikeflow::pipeline
