// spikeflow: one executable, one subcommand per job. Every error reaches the user as one line
// on stderr and a non-zero exit code.
#include <spdlog/spdlog.h>

#include <exception>
#include <iostream>
#include <map>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"spikeflow: streaming real-time neural decoding"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "spikeflow 0.1.0");
  // A bad flag is one line naming it, like every other error (CLI11 adds a --help hint line).
  app.failure_message([](const CLI::App*, const CLI::Error& e) { return std::string("spikeflow: error: ") + e.what() + "\n"; });
  std::map<CLI::App*, spikeflow::cli::Command> commands;
  auto add = [&](const char* name, const char* help, auto adder) {
    CLI::App* sub = app.add_subcommand(name, help);
    commands[sub] = adder(*sub);
  };
  add("synth", "generate a synthetic center-out session file", spikeflow::cli::add_synth);
  add("train", "train a decoder on a session and evaluate it on held-out data", spikeflow::cli::add_train);
  add("pretrain", "pretrain one decoder on many sessions (session embedding, shared unit vocabulary)",
      spikeflow::cli::add_pretrain);
  add("calibrate", "calibrate a pretrained decoder to a new session from a short block; compare with scratch, ridge, Kalman",
      spikeflow::cli::add_calibrate);
  add("run", "run the live pipeline (UDP in, ZeroMQ out) until SIGINT/SIGTERM", spikeflow::cli::add_run);
  add("send", "play a session to a live pipeline over UDP at real-time pace", spikeflow::cli::add_send);
  add("listen", "subscribe to predictions; print, record and summarise them", spikeflow::cli::add_listen);
  add("eval", "score recorded predictions against a session's behaviour", spikeflow::cli::add_eval);
  add("profile", "measure latency stage by stage under load (sender and subscriber as separate processes)",
      spikeflow::cli::add_profile);
  add("replay", "run a session through the live graph in-process, as fast as possible or paced", spikeflow::cli::add_replay);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (CLI::App* sub : app.get_subcommands()) return commands.at(sub)();
  } catch (const std::exception& e) {
    std::cerr << "spikeflow: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
