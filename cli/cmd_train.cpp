// spikeflow train: flags only; the run itself (split, training, held-out comparison with the
// baselines) is pipeline::run_training, shared with the Python module.
#include "cli/commands.h"
#include "cli/flag_checks.h"
#include "cli/session_flags.h"
#include "models/trainer.h"
#include "pipeline/training_run.h"
#include "replay/session_file.h"

namespace spikeflow::cli {

namespace {

struct TrainArgs {
  std::string behaviour =
      replay::NwbReadOptions{}.behavior_name;  ///< NWB: series name or HDF5 path
  bool behaviour_velocity = false;             ///< NWB: derive velocity from it
  std::string session, out;
  double width_ms = 50.0;
  double train_fraction = 0.7;
  double val_fraction = 0.1;
  models::TrainOptions opts;
  bool no_baselines = false;
  std::string baselines_out;
};

}  // namespace

Command add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  app.add_option("-s,--session", a->session, "session file (.sfs or .mat)")->required();
  add_behaviour_flags(app, a->behaviour, a->behaviour_velocity);
  app.add_option("-o,--out", a->out, "checkpoint to write")->required();
  in_key_range(app.add_option("--width-ms", a->width_ms, "chunk width"), "chunking.width_ms")
      ->capture_default_str();
  in_range(app.add_option("--train-fraction", a->train_fraction, "first part used for training"), 0,
           1)
      ->capture_default_str();
  in_range(app.add_option("--val-fraction", a->val_fraction, "next part used for early stopping"),
           0, 1)
      ->capture_default_str();
  in_range(app.add_option("--epochs", a->opts.max_epochs, "maximum epochs"), 1, 1e6)
      ->capture_default_str();
  non_negative(app.add_option("--max-seconds", a->opts.max_seconds, "wall-clock budget (0 = none)"))
      ->capture_default_str();
  in_range(app.add_option("--batch", a->opts.batch_size, "windows per step"), 1, 1e6)
      ->capture_default_str();
  in_range(app.add_option("--lr", a->opts.lr, "peak learning rate"), 1e-9, 10)
      ->capture_default_str();
  app.add_option("--seed", a->opts.seed, "random seed")->capture_default_str();
  in_key_range(app.add_option("--threads", a->opts.threads, "torch threads"), "decoder.threads")
      ->capture_default_str();
  in_range(app.add_option("--patience", a->opts.patience, "early-stopping patience, epochs"), 0,
           1e6)
      ->capture_default_str();
  in_range(app.add_option("--dim", a->opts.model.dim, "model width"), 1, 65536)
      ->capture_default_str();
  in_range(app.add_option("--rnn-hidden", a->opts.model.rnn_hidden, "recurrent state size"), 1,
           65536)
      ->capture_default_str();
  app.add_option("--backbone", a->opts.model.backbone, "gru | s4d")
      ->check(CLI::IsMember({"gru", "s4d"}))
      ->capture_default_str();
  app.add_option("--finetune", a->opts.finetune_from, "checkpoint to fine-tune from (new session)");
  in_range(app.add_option("--weight-decay", a->opts.weight_decay, "AdamW weight decay"), 0, 10)
      ->capture_default_str();
  in_range(app.add_option("--unit-dropout", a->opts.unit_dropout,
                          "probability of dropping a unit per window"),
           0, 0.95)
      ->capture_default_str();
  in_range(app.add_option("--ema", a->opts.ema,
                          "EMA decay of the weights, validated and saved (e.g. 0.999; 0 = off)"),
           0, 0.99999)
      ->capture_default_str();
  app.add_flag("--search", a->opts.search,
               "choose lr / weight decay / unit dropout on the validation split first (LR range "
               "test, then successive halving; within 40 % of --max-seconds)");
  in_range(app.add_option("--search-candidates", a->opts.search_candidates,
                          "settings tried by --search (the defaults among them)"),
           2, 8)
      ->capture_default_str();
  app.add_flag("--no-baselines", a->no_baselines, "skip the ridge and Kalman baselines");
  app.add_option("--baselines-out", a->baselines_out,
                 "also save the baselines as PREFIX.ridge.ckpt / PREFIX.kalman.ckpt");
  app.add_flag(
      "--no-progress", [a](int64_t) { a->opts.progress = false; }, "no progress bar");
  return [a] {
    replay::NwbReadOptions nwb;
    nwb.behavior_name = a->behaviour;
    nwb.derive_velocity = a->behaviour_velocity;
    const replay::Session s = replay::load_session(a->session, nwb);
    pipeline::TrainRunOptions o;
    o.width_ms = a->width_ms;
    o.train_fraction = a->train_fraction;
    o.val_fraction = a->val_fraction;
    o.train = a->opts;
    o.baselines = !a->no_baselines;
    o.baselines_out = a->baselines_out;
    pipeline::run_training(s, a->out, o, pipeline::stdout_sink());
    return 0;
  };
}

}  // namespace spikeflow::cli
