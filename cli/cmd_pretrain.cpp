// spikeflow pretrain: one POSSM model over many sessions (shared unit vocabulary, a session
// embedding), resumable; spikeflow calibrate: that model adapted to a new session from a short
// calibration block, printed side by side with scratch training, ridge and Kalman on the same
// data and the same held-out part.
#include <fmt/format.h>

#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/flag_checks.h"
#include "cli/split.h"
#include "core/r2.h"
#include "core/time.h"
#include "models/baselines.h"
#include "models/load_decoder.h"
#include "models/trainer.h"
#include "pipeline/training_run.h"
#include "replay/behavior_file.h"
#include "replay/dataset.h"
#include "replay/recording_file.h"
#include "replay/session_file.h"

namespace spikeflow::cli {

namespace {

/// Training flags shared by pretrain and calibrate.
void add_training_flags(CLI::App& app, models::TrainOptions& o) {
  in_range(app.add_option("--epochs", o.max_epochs, "maximum epochs"), 1, 1e6)
      ->capture_default_str();
  non_negative(app.add_option("--max-seconds", o.max_seconds, "wall-clock budget (0 = none)"))
      ->capture_default_str();
  in_range(app.add_option("--batch", o.batch_size, "windows per step"), 1, 1e6)
      ->capture_default_str();
  in_range(app.add_option("--lr", o.lr, "peak learning rate"), 1e-9, 10)->capture_default_str();
  in_range(app.add_option("--weight-decay", o.weight_decay, "AdamW weight decay"), 0, 10)
      ->capture_default_str();
  in_range(
      app.add_option("--unit-dropout", o.unit_dropout, "probability of dropping a unit per window"),
      0, 0.95)
      ->capture_default_str();
  app.add_option("--seed", o.seed, "random seed")->capture_default_str();
  in_key_range(app.add_option("--threads", o.threads, "torch threads"), "decoder.threads")
      ->capture_default_str();
  in_range(app.add_option("--patience", o.patience, "early-stopping patience, epochs"), 1, 1e6)
      ->capture_default_str();
  in_range(app.add_option("--ema", o.ema,
                          "EMA decay of the weights, validated and saved (e.g. 0.999; 0 = off)"),
           0, 0.99999)
      ->capture_default_str();
  app.add_flag(
      "--no-progress", [&o](int64_t) { o.progress = false; }, "no progress bar");
}

models::TrainOptions default_pretrain_options() {
  models::TrainOptions o;
  o.unit_dropout = 0.2;  // more than single-session training: transfer must not lean on any unit
  return o;
}

/// Session paths from -s (repeatable) and --sessions (a directory of .sfs/.mat/.nwb files, or a
/// text file listing one path per line).
std::vector<std::string> session_paths(const std::vector<std::string>& direct,
                                       const std::string& list) {
  std::vector<std::string> out = direct;
  if (list.empty()) return out;
  namespace fs = std::filesystem;
  if (fs::is_directory(list)) {
    std::vector<std::string> found;
    for (const auto& e : fs::directory_iterator(list)) {
      const auto ext = e.path().extension().string();
      if (ext == ".sfs" || ext == ".mat" || ext == ".nwb") found.push_back(e.path().string());
    }
    std::sort(found.begin(), found.end());
    if (found.empty())
      throw std::runtime_error("--sessions: directory '" + list + "' has no session files");
    out.insert(out.end(), found.begin(), found.end());
    return out;
  }
  std::ifstream in(list);
  if (!in) throw std::runtime_error("--sessions: cannot open '" + list + "'");
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    out.push_back(line);
  }
  return out;
}

std::string stem(const std::string& path) { return std::filesystem::path(path).stem().string(); }


/// The options given on this command line, as arguments again (flags once per use, options with
/// each value they were given), except those in `skip`: what --ranks hands each rank, so every
/// flag reaches the ranks without a second list of them to keep in step.
std::vector<std::string> given_flags(const CLI::App& app, const std::vector<const CLI::Option*>& skip) {
  std::vector<std::string> out;
  for (const CLI::Option* o : app.get_options()) {
    if (o->count() == 0 || std::find(skip.begin(), skip.end(), o) != skip.end()) continue;
    const std::string name = o->get_lnames().empty() ? "-" + o->get_single_name()
                                                     : "--" + o->get_single_name();
    if (o->get_expected_max() == 0) {  // a flag
      for (size_t i = 0; i < o->count(); ++i) out.push_back(name);
      continue;
    }
    for (const auto& v : o->results()) {
      out.push_back(name);
      out.push_back(v);
    }
  }
  return out;
}

/// A free localhost TCP port (bound to port 0, then released) for a local group's TCPStore.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("pretrain --ranks: cannot open a socket to pick a port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("pretrain --ranks: cannot pick a free port");
  }
  const int port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

/// Runs this same command as n local processes (RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT set,
/// --ranks removed), waits for all and returns the first non-zero exit code. Rank 0 keeps the
/// terminal; the others are quiet (their errors still reach stderr).
int launch_local_ranks(int n, const std::vector<std::string>& argv) {
  const int port = free_port();
  std::vector<pid_t> pids;
  for (int r = 0; r < n; ++r) {
    std::vector<std::string> args = argv;
    for (const char* quiet : {"--no-progress", "--quiet"})
      if (r != 0 && std::find(args.begin(), args.end(), quiet) == args.end()) args.push_back(quiet);
    std::vector<char*> cargv;
    for (auto& x : args) cargv.push_back(x.data());
    cargv.push_back(nullptr);
    std::vector<std::string> env_s;
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string kv = *e;
      if (kv.rfind("RANK=", 0) == 0 || kv.rfind("WORLD_SIZE=", 0) == 0 ||
          kv.rfind("MASTER_ADDR=", 0) == 0 || kv.rfind("MASTER_PORT=", 0) == 0)
        continue;
      env_s.push_back(kv);
    }
    env_s.push_back("RANK=" + std::to_string(r));
    env_s.push_back("WORLD_SIZE=" + std::to_string(n));
    env_s.push_back("MASTER_ADDR=127.0.0.1");
    env_s.push_back("MASTER_PORT=" + std::to_string(port));
    std::vector<char*> cenv;
    for (auto& x : env_s) cenv.push_back(x.data());
    cenv.push_back(nullptr);
    pid_t pid = 0;
    if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, cargv.data(), cenv.data()) != 0) {
      for (pid_t p : pids) ::kill(p, SIGTERM);
      throw std::runtime_error("pretrain --ranks: cannot start rank " + std::to_string(r));
    }
    pids.push_back(pid);
  }
  int rc = 0;
  for (size_t left = pids.size(); left > 0; --left) {
    int status = 0;
    const pid_t p = ::wait(&status);
    if (p < 0) break;
    const auto it = std::find(pids.begin(), pids.end(), p);
    const int rank = static_cast<int>(it - pids.begin());
    const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (code != 0) {
      fmt::print(stderr, "pretrain: rank {} (pid {}) {} {}\n", rank, p,
                 WIFEXITED(status) ? "exited with code" : "was killed by signal",
                 WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      if (rc == 0) rc = code;
    }
  }
  return rc;
}

/// The new session of `calibrate --recording REC --behavior FILE`: the recording's spikes with the
/// file's behaviour, which must cover them (to within one chunk) on the same device clock.
replay::Session session_from_calibration_block(const std::string& recording,
                                               const std::string& behavior, int64_t width_ns) {
  const replay::Recording rec = replay::read_recording(recording);
  if (!rec.problem.empty()) fmt::print("calibrate: warning: {}\n", rec.problem);
  return replay::session_from_recording(rec, recording, replay::read_behavior_file(behavior),
                                        behavior, width_ns);
}

}  // namespace

Command add_pretrain(CLI::App& app) {
  struct Args {
    std::vector<std::string> sessions;
    std::string list, out;
    double width_ms = 50.0, train_fraction = 0.8, val_fraction = 0.2;
    models::PretrainOptions opts{default_pretrain_options(), "", 0, {}};
    bool resume = false, quiet = false;
    int ranks = 0;
    std::string master;
  };
  auto a = std::make_shared<Args>();
  app.add_option("-s,--session", a->sessions, "a session file (repeat for each session)");
  app.add_option("--sessions", a->list,
                 "a directory of session files, or a file listing one path per line");
  app.add_option("-o,--out", a->out, "multi-session checkpoint to write")->required();
  in_key_range(app.add_option("--width-ms", a->width_ms, "chunk width"), "chunking.width_ms")
      ->capture_default_str();
  in_range(app.add_option("--train-fraction", a->train_fraction,
                          "first part of each session used for training"),
           0.01, 1)
      ->capture_default_str();
  in_range(app.add_option("--val-fraction", a->val_fraction,
                          "next part of each session used for validation"),
           0.01, 1)
      ->capture_default_str();
  add_training_flags(app, a->opts.train);
  in_range(app.add_option("--dim", a->opts.train.model.dim, "model width"), 4, 65536)
      ->capture_default_str();
  in_range(app.add_option("--rnn-hidden", a->opts.train.model.rnn_hidden, "recurrent state size"),
           1, 65536)
      ->capture_default_str();
  app.add_option("--backbone", a->opts.train.model.backbone, "gru | s4d")
      ->check(CLI::IsMember({"gru", "s4d"}))
      ->capture_default_str();
  app.add_flag(
      "--search", a->opts.train.search,
      "choose lr / weight decay / unit dropout on the validation split first (successive halving)");
  app.add_flag("--resume", a->resume, "continue an interrupted run from OUT.resume");
  // Data-parallel (c10d Gloo): torchrun-style environment variables or these flags.
  auto* world_opt = in_range(app.add_option("--world-size", a->opts.dist.world_size,
                                            "data-parallel: number of ranks (or WORLD_SIZE)"),
                             1, 4096);
  auto* rank_opt = in_range(
      app.add_option("--rank", a->opts.dist.rank, "data-parallel: this process's rank (or RANK)"),
      0, 4095);
  auto* master_opt = app.add_option(
      "--master", a->master, "data-parallel: rank 0's ADDR:PORT (or MASTER_ADDR / MASTER_PORT)");
  in_range(app.add_option(
               "--dist-timeout-s", a->opts.dist.timeout_s,
               "data-parallel: rendezvous / collective timeout (a dead rank ends the others)"),
           1, 86400)
      ->capture_default_str();
  app.add_option("--backend", a->opts.dist.backend, "data-parallel backend")
      ->check(CLI::IsMember({"gloo", "nccl"}))
      ->capture_default_str();
  auto* ranks_opt = in_range(
      app.add_option("--ranks", a->ranks, "start N local data-parallel processes of this command"),
      1, 256);
  app.add_flag("--quiet", a->quiet, "print nothing but errors (non-zero ranks)");
  ranks_opt->excludes(world_opt)->excludes(rank_opt)->excludes(master_opt);
  return [a, &app, ranks_opt] {
    if (a->ranks > 0) {
      // The same command for every rank, without --ranks.
      std::vector<std::string> args{"spikeflow", "pretrain"};
      for (auto& x : given_flags(app, {ranks_opt})) args.push_back(std::move(x));
      return launch_local_ranks(a->ranks, args);
    }
    a->opts.dist = models::dist_options_from_env(a->opts.dist);
    if (!a->master.empty()) {
      const auto colon = a->master.rfind(':');
      if (colon == std::string::npos || colon == 0)
        throw std::runtime_error("--master: expected ADDR:PORT, got '" + a->master + "'");
      a->opts.dist.master_addr = a->master.substr(0, colon);
      try {
        a->opts.dist.master_port = std::stoi(a->master.substr(colon + 1));
      } catch (const std::exception&) {
        throw std::runtime_error("--master: bad port in '" + a->master + "'");
      }
    }
    models::validate_dist_options(a->opts.dist);
    const bool rank0 = a->opts.dist.rank == 0;
    const bool talk = rank0 && !a->quiet;
    const auto paths = session_paths(a->sessions, a->list);
    if (paths.empty()) throw std::runtime_error("pretrain: give sessions with -s or --sessions");
    if (a->train_fraction + a->val_fraction > 1.0 + 1e-9)
      throw std::runtime_error("pretrain: --train-fraction + --val-fraction must be <= 1");
    a->opts.resume_path = a->out + ".resume";
    if (rank0 && std::filesystem::exists(a->opts.resume_path) && !a->resume) {
      throw std::runtime_error(
          "pretrain: '" + a->opts.resume_path +
          "' holds an interrupted run: pass --resume to continue it, or delete it");
    }
    const int64_t width_ns = static_cast<int64_t>(a->width_ms * core::kNsPerMs);
    std::vector<core::DecodingDataset> trains, vals;
    std::vector<std::string> names;
    trains.reserve(paths.size());
    vals.reserve(paths.size());
    for (const auto& p : paths) {
      replay::Session s = replay::load_session(p);
      const Split sp = make_split(s, a->train_fraction, a->val_fraction, width_ns);
      trains.push_back(build_range(s, width_ns, sp.train_from, sp.val_from));
      vals.push_back(build_range(s, width_ns, sp.val_from, sp.test_from));
      names.push_back(stem(p));
      if (talk)
        fmt::print("pretrain: {}: {} units, chunks train {} / validation {}\n", p, s.num_units(),
                   trains.back().size(), vals.back().size());
    }
    std::vector<models::TrainSession> sessions;
    for (size_t i = 0; i < paths.size(); ++i) sessions.push_back({names[i], &trains[i], &vals[i]});
    const auto r = models::pretrain_possm(sessions, a->opts, a->out);
    if (!talk) return 0;
    if (a->opts.dist.world_size > 1)
      fmt::print("pretrain: data-parallel over {} ranks (c10d {})\n", a->opts.dist.world_size,
                 a->opts.dist.backend);
    fmt::print(
        "pretrain: throughput {:.1f} windows/s (training only, all ranks, {} thread(s) per rank)\n",
        r.windows_per_s, a->opts.train.threads);
    if (!r.search_report.empty()) fmt::print("{}", r.search_report);
    if (r.resumed_from_epoch > 0)
      fmt::print("pretrain: resumed after epoch {}\n", r.resumed_from_epoch);
    fmt::print(
        "pretrain: best epoch {} of {}, mean validation R2 {:.3f}, {:.1f} s, {} parameters -> {}\n",
        r.best_epoch, r.epochs_run, r.best_val_r2, r.seconds, r.num_parameters, a->out);
    for (size_t i = 0; i < r.session_val_r2.size() && i < names.size(); ++i)
      fmt::print("  {:<24} validation R2 {:6.3f}\n", names[i], r.session_val_r2[i]);
    fmt::print("{}", models::describe_possm_checkpoint(a->out));
    return 0;
  };
}

Command add_calibrate(CLI::App& app) {
  struct Args {
    std::string base, session, out, recording, behavior;
    double calibration_s = 60.0, test_fraction = 0.2, val_share = 0.2;
    models::CalibrateOptions opts;
    bool no_finetune = false, no_scratch = false;
  };
  auto a = std::make_shared<Args>();
  a->opts.train.unit_dropout = 0.2;
  app.add_option("--base", a->opts.base, "pretrained multi-session checkpoint")->required();
  auto* session = app.add_option("-s,--session", a->session, "the new session (.sfs, .mat or .nwb)");
  auto* recording = app.add_option(
      "--recording", a->recording,
      "instead of -s: a calibration block recorded live (`spikeflow run --calibration-block`)");
  auto* behavior = app.add_option(
      "--behavior,--behaviour", a->behavior,
      "with --recording: the session's behaviour on the device clock (CSV t_s,vx,vy,... or a "
      "session file)");
  session->excludes(recording);
  recording->needs(behavior);
  behavior->needs(recording);
  app.add_option("-o,--out", a->out, "calibrated checkpoint to write")->required();
  auto* cal_s = in_range(app.add_option("--calibration-s", a->calibration_s,
                                        "calibration block: the session's first seconds (with "
                                        "--recording: all of it before the held-out part)"),
                         1, 1e7)
                    ->capture_default_str();
  in_range(app.add_option("--test-fraction", a->test_fraction,
                          "held-out part: the session's last trials"),
           0.01, 0.99)
      ->capture_default_str();
  in_range(app.add_option("--val-share", a->val_share,
                          "end of the calibration block used for early stopping"),
           0.05, 0.5)
      ->capture_default_str();
  add_training_flags(app, a->opts.train);
  in_range(app.add_option("--reid-epochs", a->opts.reid_epochs, "stage 1 (embeddings only) epochs"),
           1, 1e6)
      ->capture_default_str();
  in_range(
      app.add_option("--finetune-epochs", a->opts.finetune_epochs, "stage 2 (all layers) epochs"),
      1, 1e6)
      ->capture_default_str();
  in_range(app.add_option("--reid-lr-scale", a->opts.reid_lr_scale, "stage 1 lr = lr x this"), 1e-6,
           100)
      ->capture_default_str();
  in_range(
      app.add_option("--finetune-lr-scale", a->opts.finetune_lr_scale, "stage 2 lr = lr x this"),
      1e-6, 10)
      ->capture_default_str();
  app.add_flag("--no-finetune", a->no_finetune, "stop after unit re-identification");
  app.add_flag("--no-scratch", a->no_scratch, "skip the from-scratch comparison");
  app.add_flag("--search", a->opts.train.search,
               "choose lr / weight decay / unit dropout on the calibration block's validation "
               "part first (LR range test, then successive halving over 4 candidates)");
  return [a, cal_s] {
    if (a->session.empty() == a->recording.empty())
      throw UsageError("calibrate needs the new session: -s FILE, or --recording REC --behavior FILE");
    const std::string source = a->recording.empty() ? a->session : a->recording;
    replay::Session s =
        a->recording.empty()
            ? replay::load_session(a->session)
            : session_from_calibration_block(
                  a->recording, a->behavior,
                  models::load_decoder(a->opts.base, models::RuntimeOptions{})->chunk_width_ns());
    // A block recorded live is all calibration data (before the held-out part) unless told.
    const double calibration_s =
        !a->recording.empty() && cal_s->count() == 0 ? 0.0 : a->calibration_s;
    a->opts.finetune = !a->no_finetune;
    pipeline::run_calibration(
        s, source, a->out, {a->opts, calibration_s, a->test_fraction, a->val_share, !a->no_scratch},
        pipeline::stdout_sink());
    return 0;
  };
}

}  // namespace spikeflow::cli
