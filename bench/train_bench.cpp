// Training benchmark: the end-to-end demo's setting — a 4-minute synthetic 96-unit session
// (replay::synthesize_session), 70 % train / 10 % validation / 20 % held-out test, POSSM small
// config trained under a wall-clock budget on 2 threads. Prints training time and R².
// Usage: possm_train_bench [max_seconds=35] [duration_s=240] [threads=2] [batch] [lr] [window]
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/r2.h"
#include "models/baselines.h"
#include "models/load_decoder.h"
#include "models/trainer.h"
#include "replay/dataset.h"
#include "replay/synth_session.h"

using namespace spikeflow;

int main(int argc, char** argv) {
  const double max_seconds = argc > 1 ? std::atof(argv[1]) : 35.0;
  const double duration_s = argc > 2 ? std::atof(argv[2]) : 240.0;
  const int threads = argc > 3 ? std::atoi(argv[3]) : 2;
  replay::SynthOptions so;
  so.num_units = 96;
  so.duration_s = duration_s;
  const replay::Session session = replay::synthesize_session(so);
  const int64_t width = 50'000'000;
  const int64_t t_val = replay::split_time_ns(session, 0.7, width);
  const int64_t t_test = replay::split_time_ns(session, 0.8, width);
  replay::DatasetOptions o;
  o.width_ns = width;
  o.to_ns = t_val;
  const auto train = replay::build_dataset(session, o);
  o.from_ns = t_val;
  o.to_ns = t_test;
  const auto val = replay::build_dataset(session, o);
  o.from_ns = t_test;
  o.to_ns = INT64_MAX;
  const auto test = replay::build_dataset(session, o);

  models::TrainOptions opts;
  opts.max_seconds = max_seconds;
  opts.threads = threads;
  if (argc > 4) opts.batch_size = std::atoi(argv[4]);
  if (argc > 5) opts.lr = std::atof(argv[5]);
  if (argc > 6) opts.window_chunks = std::atoi(argv[6]);
  const std::string path =
      (std::filesystem::temp_directory_path() / "possm_train_bench.ckpt").string();
  const auto r = models::train_possm(train, val, opts, path);
  auto dec = models::load_decoder(path, {"cpu", 1});
  const auto pred = models::decode_dataset(*dec, test);
  const double test_r2 = core::mean_r2(test.targets, pred, test.output_dim);
  std::printf("train %zu chunks, val %zu, test %zu; %zu parameters\n", train.size(), val.size(),
              test.size(), r.num_parameters);
  std::printf("epochs %d (best %d), %.1f s, val R2 %.4f, held-out test R2 %.4f\n", r.epochs_run,
              r.best_epoch, r.seconds, r.best_val_r2, test_r2);
  for (auto* name : {"ridge", "kalman"}) {
    const auto fit =
        std::string(name) == "ridge" ? models::fit_ridge(train) : models::fit_kalman(train);
    const double r2 =
        core::mean_r2(test.targets, models::decode_dataset(*fit.decoder, test), test.output_dim);
    std::printf("baseline %-6s held-out test R2 %.4f\n", name, r2);
  }
  std::filesystem::remove(path);
  return 0;
}
