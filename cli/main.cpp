// spikeflow: one executable, one subcommand per job. Every error reaches the user as one line
// on stderr and a non-zero exit code from cli/exit_codes.h, chosen here by the error's type.
#include <spdlog/spdlog.h>

#include <exception>
#include <iostream>
#include <map>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "core/file_check.h"
#include "pipeline/config_reader.h"

int main(int argc, char** argv) {
  CLI::App app{"spikeflow: streaming real-time neural decoding"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "spikeflow " SPIKEFLOW_VERSION);
  // A bad flag is one line naming it, like every other error (CLI11 adds a --help hint line).
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return std::string("spikeflow: error: ") + e.what() + "\n";
  });
  std::map<CLI::App*, spikeflow::cli::Command> commands;
  auto add = [&](const char* name, const char* help, auto adder) {
    CLI::App* sub = app.add_subcommand(name, help);
    commands[sub] = adder(*sub);
  };
  add("synth", "generate a synthetic center-out session file", spikeflow::cli::add_synth);
  add("train", "train a decoder on a session and evaluate it on held-out data",
      spikeflow::cli::add_train);
  add("pretrain",
      "pretrain one decoder on many sessions (session embedding, shared unit vocabulary)",
      spikeflow::cli::add_pretrain);
  add("calibrate",
      "calibrate a pretrained decoder to a new session from a short block; compare with scratch, "
      "ridge, Kalman",
      spikeflow::cli::add_calibrate);
  add("run", "run the live pipeline (UDP in, ZeroMQ out) until SIGINT/SIGTERM",
      spikeflow::cli::add_run);
  add("send", "play a session to a live pipeline over UDP at real-time pace",
      spikeflow::cli::add_send);
  add("listen", "subscribe to predictions; print, record and summarise them",
      spikeflow::cli::add_listen);
  add("eval", "score recorded predictions against a session's behaviour", spikeflow::cli::add_eval);
  add("profile",
      "measure latency stage by stage under load (sender and subscriber as separate processes)",
      spikeflow::cli::add_profile);
  add("replay", "run a session through the live graph in-process, as fast as possible or paced",
      spikeflow::cli::add_replay);
  using namespace spikeflow::cli;
  add("keygen", "write a CURVE key pair (PREFIX.key_secret, PREFIX.key) for encrypted publishing",
      spikeflow::cli::add_keygen);
  add("export", "write a recording of a live run as an NWB 2.x file (spikes, predictions, timing)",
      spikeflow::cli::add_export);
  add("inspect", "describe a checkpoint, session or recording (--json for scripts)",
      spikeflow::cli::add_inspect);
  add("soak",
      "run the pipeline for a long time under scheduled faults; check the contract, RSS, fds and "
      "threads",
      spikeflow::cli::add_soak);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints the message; 0 for --help / --version
    return rc == 0 ? kOk : kUsage;
  }
  auto fail = [](const std::exception& e, ExitCode code) {
    std::cerr << "spikeflow: error: " << e.what() << "\n";
    return code;
  };
  try {
    for (CLI::App* sub : app.get_subcommands()) return commands.at(sub)();
  } catch (const spikeflow::core::InputFileError& e) {
    return fail(e, kInputFile);
  } catch (const spikeflow::pipeline::ConfigError& e) {
    return fail(e, kUsage);
  } catch (const UsageError& e) {
    return fail(e, kUsage);
  } catch (const ExitError& e) {
    return fail(e, e.code());
  } catch (const std::exception& e) {
    return fail(e, kFailure);
  }
  return kOk;
}
