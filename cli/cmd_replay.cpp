#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <unordered_map>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "cli/split.h"
#include "core/chunk_flags.h"
#include "pipeline/recorder.h"
#include "pipeline/recording_replay.h"
#include "replay/recording_file.h"
#include "core/time.h"
#include "models/load_decoder.h"
#include "models/streaming_decoder.h"
#include "pipeline/live_pipeline.h"
#include "pipeline/pipeline_config.h"
#include "replay/eval_report.h"
#include "replay/session_file.h"

namespace spikeflow::cli {

namespace {

struct ReplayArgs {
  std::string session, recording, checkpoint, config, publish;
  std::string part = "test";
  double train_fraction = 0.7, val_fraction = 0.1;
  double speed = 0;  // 0 = as fast as possible
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
  if (!rec.clean_end) fmt::print("replay: warning: {} was not closed cleanly ({} bytes lost)\n", a.recording, rec.bytes_lost);
  pipeline::PipelineConfig cfg = pipeline::parse_pipeline_config(rec.config, a.recording + " (recorded config)");
  cfg.ingest.transport = "none";
  cfg.record.path.clear();
  cfg.publish.endpoint = a.publish.empty() ? "inproc://spikeflow-replay" : a.publish;
  if (!a.checkpoint.empty()) cfg.decoder.checkpoint = a.checkpoint;
  const std::string identity = pipeline::file_identity(cfg.decoder.checkpoint);
  if (identity != rec.model_identity) {
    fmt::print("replay: warning: checkpoint {} ({}) is not the recorded model ({})\n", cfg.decoder.checkpoint,
               identity, rec.model_identity);
  }
  models::RuntimeOptions rt{cfg.decoder.device, a.threads, cfg.decoder.path};
  const auto t0 = std::chrono::steady_clock::now();
  const auto out = pipeline::replay_recording(rec, cfg, models::load_decoder(cfg.decoder.checkpoint, rt));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  size_t identical = 0, first_diff = SIZE_MAX;
  const size_t n = std::min(out.size(), rec.predictions.size());
  for (size_t i = 0; i < n; ++i) {
    const auto& x = out[i];
    const auto& y = rec.predictions[i];
    const bool same = x.seq == y.seq && x.flags == y.flags && x.n_tokens == y.n_tokens &&
                      x.output_dim == y.output_dim &&
                      std::memcmp(x.values.data(), y.values.data(), sizeof(float) * x.output_dim) == 0;
    if (same) {
      ++identical;
    } else if (first_diff == SIZE_MAX) {
      first_diff = i;
    }
  }
  fmt::print("replay: {} records of packets and deadline ticks, {} recorded predictions, {} replayed in {:.3f} s\n",
             rec.batches.size(),
             rec.predictions.size(), out.size(), wall);
  fmt::print("replay: bit-identical {} of {}{}\n", identical, rec.predictions.size(),
             first_diff == SIZE_MAX ? "" : fmt::format(" (first difference at prediction {}, seq {})", first_diff,
                                                       rec.predictions[first_diff].seq));
  return identical == rec.predictions.size() && out.size() == rec.predictions.size() ? 0 : 3;
}

}  // namespace

Command add_replay(CLI::App& app) {
  auto a = std::make_shared<ReplayArgs>();
  auto* session = app.add_option("-s,--session", a->session, "session file (.sfs, .mat, .nwb)");
  auto* recording = app.add_option("-r,--recording", a->recording,
                                   "recording of a live run (`run --record`): replay it exactly and compare");
  session->excludes(recording);
  app.add_option("--checkpoint", a->checkpoint, "decoder checkpoint (with --recording: defaults to the recorded one)");
  app.add_option("-c,--config", a->config, "pipeline config (chunking, decoder, publish); ingest is in-process");
  app.add_option("--publish", a->publish, "also publish on this ZeroMQ endpoint (default: an inproc one)");
  app.add_option("--part", a->part, "all | test")->check(CLI::IsMember({"all", "test"}))->capture_default_str();
  app.add_option("--train-fraction", a->train_fraction, "as for train")->capture_default_str();
  app.add_option("--val-fraction", a->val_fraction, "as for train")->capture_default_str();
  app.add_option("--speed", a->speed, "x real time; 0 = as fast as possible")->capture_default_str();
  app.add_option("--batch-ms", a->batch_ms,
                 "session time per pushed packet; 0 = 5 ms when paced, one chunk width as fast as possible "
                 "(fewer hand-offs: ~20% faster than 5 ms)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--max-batch", a->max_batch, "most chunks per decoder call")->capture_default_str();
  app.add_option("--threads", a->threads,
                 "decoder threads (fast path: batched calls encode chunks on a second thread; results are "
                 "identical)")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  return [a] {
    if (!a->recording.empty()) return replay_recording(*a);
    if (a->session.empty() || a->checkpoint.empty()) {
      throw std::runtime_error("replay needs --session and --checkpoint, or --recording");
    }
    pipeline::PipelineConfig cfg = a->config.empty() ? pipeline::parse_pipeline_config("", "built-in defaults")
                                                     : pipeline::load_pipeline_config(a->config);
    cfg.ingest.transport = "none";
    cfg.decoder.checkpoint = a->checkpoint;
    cfg.decoder.max_batch = a->max_batch;
    cfg.publish.endpoint = a->publish.empty() ? "inproc://spikeflow-replay" : a->publish;
    // As fast as possible runs on the session's clock alone: chunks close by watermark.
    cfg.chunking.deadline_enabled = a->speed > 0;

    replay::Session s = replay::load_session(a->session);
    const int64_t width = cfg.chunking.width_ns;
    const int64_t from = a->part == "test" ? make_split(s, a->train_fraction, a->val_fraction, width).test_from
                                           : s.start_ns;
    const int64_t to = s.end_ns;
    const auto events = replay::merged_events(s, from, to);

    models::RuntimeOptions rt{cfg.decoder.device, a->threads, cfg.decoder.path};
    auto decoder = models::load_decoder(cfg.decoder.checkpoint, rt);
    std::vector<core::Prediction> predictions;
    pipeline::LiveOptions lo;
    lo.on_prediction = [&predictions](const core::Prediction& p) { predictions.push_back(p); };
    lo.external_ticks = a->speed <= 0;
    pipeline::LivePipeline live(cfg, std::move(decoder), std::move(lo));
    live.start();

    const auto t0 = std::chrono::steady_clock::now();
    const double batch_ms = a->batch_ms > 0 ? a->batch_ms : a->speed > 0 ? 5.0 : static_cast<double>(width) / core::kNsPerMs;
    const int64_t step = std::max<int64_t>(1, static_cast<int64_t>(batch_ms * core::kNsPerMs));
    // In-flight bound in chunks (a packet of `step` closes up to step / width of them), so that
    // as-fast-as-possible replay never reaches the decoder's backlog bound and sheds nothing.
    const int64_t per_packet = (step + width - 1) / width;
    const auto in_flight = static_cast<uint64_t>(std::max<int64_t>(4, 4 * a->max_batch / per_packet));
    size_t next = 0;
    const int64_t host0 = core::host_now_ns();
    for (int64_t t = from + step; t < to + step; t += step) {
      core::EventBatch b;
      b.device_time_ns = std::min(t, to);
      while (next < events.size() && events[next].t_ns <= b.device_time_ns) b.events.push_back(events[next++]);
      if (a->speed > 0) {
        const int64_t due = host0 + static_cast<int64_t>(static_cast<double>(b.device_time_ns - from) / a->speed);
        const int64_t wait = due - core::host_now_ns();
        if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
        b.arrival_host_ns = core::host_now_ns();
      } else {
        b.arrival_host_ns = host0 + (b.device_time_ns - from);  // the session's clock as host time
        live.wait_in_flight_below(in_flight);
      }
      live.push(std::move(b));
    }
    live.stop();
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double session_s = (to - from) * 1e-9;
    const auto st = live.stats();

    // Score against the behaviour with the evaluator every command shares (same chunking as training).
    const auto eval = replay::evaluate(s, predictions, from, to, width);
    fmt::print("replay: {} events, {:.1f} s of session in {:.3f} s wall = {:.0f}x real time\n", events.size(),
               session_s, wall, session_s / wall);
    fmt::print("replay: {} chunks decoded in {} batched calls (max batch {}), {} predictions, out of order {}, "
               "backlog shed {}\n",
               st.decode.chunks, st.decode.batched_calls, st.decode.max_batch, st.predictions, st.out_of_order,
               st.backlog_shed);
    if (eval.matched > 0) {
      fmt::print("replay: R2 {} = {:.3f}, {} = {:.3f}, mean {:.3f} over {} chunks\n", eval.names[0], eval.r2[0],
                 eval.names.size() > 1 ? eval.names[1] : "-", eval.r2.size() > 1 ? eval.r2[1] : 0.0, eval.mean_r2,
                 eval.matched);
    }
    return 0;
  };
}

}  // namespace spikeflow::cli
