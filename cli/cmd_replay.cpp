// spikeflow replay: flags only. A recording replays exactly (pipeline/recording_replay.h) and is
// compared with what it recorded; a session plays through the graph in process
// (pipeline/session_replay.h) and is scored.
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <stdexcept>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/flag_checks.h"
#include "cli/session_flags.h"
#include "cli/split.h"
#include "models/streaming_decoder.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/recorder.h"
#include "pipeline/recording_replay.h"
#include "pipeline/session_replay.h"
#include "replay/recording_file.h"
#include "models/load_decoder.h"
#include "replay/session_file.h"

namespace spikeflow::cli {

namespace {

struct ReplayArgs {
  std::string behaviour =
      replay::NwbReadOptions{}.behavior_name;  ///< NWB: series name or HDF5 path
  bool behaviour_velocity = false;             ///< NWB: derive velocity from it
  std::string session, recording, checkpoint, config, publish;
  std::string part = "test";
  double train_fraction = 0.7, val_fraction = 0.1;
  double speed = 0;     // 0 = as fast as possible
  double batch_ms = 0;  // 0 = 5 ms paced, one chunk width as fast as possible
  int max_batch = 64;
  int threads = 2;
};

/// Re-runs a recording through the same graph on its own clock: every packet at its recorded
/// arrival time, a deadline tick wherever the live run closed a chunk by deadline, and the
/// decoder batching exactly as it did live. The predictions must be bit-identical.
int replay_recording(const ReplayArgs& a) {
  const replay::Recording rec = replay::read_recording(a.recording);
  if (!rec.problem.empty()) fmt::print("replay: warning: {}\n", rec.problem);
  pipeline::check_recording_has(rec, a.recording, pipeline::RecordingNeed::kReplay);
  if (!rec.clean_end)
    fmt::print("replay: warning: {} was not closed cleanly ({} bytes lost)\n", a.recording,
               rec.bytes_lost);
  pipeline::PipelineConfig cfg =
      pipeline::parse_pipeline_config(rec.config, a.recording + " (recorded config)");
  cfg.ingest.transport = pipeline::Transport::kNone;
  cfg.record.path.clear();
  cfg.publish.endpoint = a.publish.empty() ? "inproc://spikeflow-replay" : a.publish;
  if (!a.checkpoint.empty()) cfg.decoder.checkpoint = a.checkpoint;
  const std::string identity = pipeline::file_identity(cfg.decoder.checkpoint);
  if (identity != rec.model_identity) {
    fmt::print("replay: warning: checkpoint {} ({}) is not the recorded model ({})\n",
               cfg.decoder.checkpoint, identity, rec.model_identity);
  }
  models::RuntimeOptions rt = pipeline::runtime_options(cfg.decoder);
  rt.threads = a.threads;
  const auto t0 = std::chrono::steady_clock::now();
  const auto out =
      pipeline::replay_recording(rec, cfg, models::load_decoder(cfg.decoder.checkpoint, rt));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  const auto check = pipeline::check_replay(out, rec);
  const auto& cmp = check.comparison;
  fmt::print(
      "replay: {} records of packets and deadline ticks, {} recorded predictions, {} replayed in "
      "{:.3f} s\n",
      rec.batches.size(), rec.predictions.size(), out.size(), wall);
  if (!rec.clean_end) {
    fmt::print(
        "replay: torn recording: comparing the {} predictions before the last recorded decoder "
        "call ({} "
        "left out, maybe partial; {} replayed past the last record)\n",
        check.compared, check.incomplete_tail, check.extra_replayed);
  }
  fmt::print("replay: bit-identical {} of {}{}\n", cmp.identical, check.compared,
             cmp.first_difference == SIZE_MAX
                 ? ""
                 : fmt::format(" (first difference at prediction {}, seq {})", cmp.first_difference,
                               rec.predictions[cmp.first_difference].seq));
  if (!cmp.all_identical) {
    throw ExitError(
        kMismatch,
        fmt::format("{}: replay is not bit-identical to the recording ({} of {} predictions)",
                    a.recording, cmp.identical, rec.predictions.size()));
  }
  return static_cast<int>(kOk);
}

void print_session_replay(const pipeline::SessionReplayResult& r) {
  const auto& st = r.stats;
  const auto& eval = r.eval;
  fmt::print("replay: {} events, {:.1f} s of session in {:.3f} s wall = {:.0f}x real time\n",
             r.events, r.session_s, r.wall_s, r.session_s / r.wall_s);
  fmt::print(
      "replay: {} chunks decoded in {} batched calls (max batch {}), {} predictions, out of order "
      "{}, "
      "backlog shed {}\n",
      st.decode.chunks, st.decode.batched_calls, st.decode.max_batch, st.predictions,
      st.out_of_order, st.backlog_shed);
  if (eval.matched >= 2) {  // fewer: R² undefined (EvalResult)
    fmt::print("replay: R2 {} = {:.3f}, {} = {:.3f}, mean {:.3f} over {} chunks\n", eval.names[0],
               eval.r2[0], eval.names.size() > 1 ? eval.names[1] : "-",
               eval.r2.size() > 1 ? eval.r2[1] : 0.0, eval.mean_r2, eval.matched);
  }
}

}  // namespace

Command add_replay(CLI::App& app) {
  auto a = std::make_shared<ReplayArgs>();
  auto* session = app.add_option("-s,--session", a->session, "session file (.sfs, .mat, .nwb)");
  add_behaviour_flags(app, a->behaviour, a->behaviour_velocity);
  auto* recording =
      app.add_option("-r,--recording", a->recording,
                     "recording of a live run (`run --record`): replay it exactly and compare");
  session->excludes(recording);
  app.add_option("--checkpoint", a->checkpoint,
                 "decoder checkpoint (with --recording: defaults to the recorded one)");
  app.add_option("-c,--config", a->config,
                 "pipeline config (chunking, decoder, publish); ingest is in-process");
  app.add_option("--publish", a->publish,
                 "also publish on this ZeroMQ endpoint (default: an inproc one)");
  add_part_flags(app, a->part, a->train_fraction, a->val_fraction);
  in_range(app.add_option("--speed", a->speed, "x real time; 0 = as fast as possible"), 0, 1e6)
      ->capture_default_str();
  in_range(app.add_option("--batch-ms", a->batch_ms,
                          "session time per pushed packet; 0 = 5 ms when paced, one chunk width as "
                          "fast as possible "
                          "(fewer hand-offs: ~20% faster than 5 ms)"),
           0, 10000)
      ->capture_default_str();
  in_key_range(app.add_option("--max-batch", a->max_batch, "most chunks per decoder call"),
               "decoder.max_batch")
      ->capture_default_str();
  in_key_range(
      app.add_option(
          "--threads", a->threads,
          "decoder threads (fast path: batched calls encode chunks on a second thread; results "
          "are identical)"),
      "decoder.threads")
      ->capture_default_str();
  return [a] {
    if (!a->recording.empty()) return replay_recording(*a);
    if (a->session.empty() || a->checkpoint.empty()) {
      throw UsageError("replay needs --session and --checkpoint, or --recording");
    }
    pipeline::PipelineConfig cfg = a->config.empty()
                                       ? pipeline::parse_pipeline_config("", "built-in defaults")
                                       : pipeline::load_pipeline_config(a->config);
    cfg.decoder.checkpoint = a->checkpoint;
    cfg.decoder.max_batch = a->max_batch;
    cfg.publish.endpoint = a->publish.empty() ? "inproc://spikeflow-replay" : a->publish;

    replay::NwbReadOptions nwb;
    nwb.behavior_name = a->behaviour;
    nwb.derive_velocity = a->behaviour_velocity;
    replay::Session s = replay::load_session(a->session, nwb);
    const int64_t width = cfg.chunking.width_ns;
    pipeline::SessionReplayOptions ro;
    ro.from_ns = a->part == "test"
                     ? make_split(s, a->train_fraction, a->val_fraction, width).test_from
                     : s.start_ns;
    ro.to_ns = s.end_ns;
    ro.speed = a->speed;
    ro.batch_ms = a->batch_ms;
    models::RuntimeOptions rt = pipeline::runtime_options(cfg.decoder);
    rt.threads = a->threads;
    const auto r =
        pipeline::replay_session(s, cfg, models::load_decoder(cfg.decoder.checkpoint, rt), ro);
    print_session_replay(r);
    return 0;
  };
}

}  // namespace spikeflow::cli
