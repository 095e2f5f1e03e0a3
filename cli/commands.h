// The spikeflow subcommands. Each registers its options on a CLI11 subcommand and returns the
// function that runs it (exit code). main.cpp lists them; nothing else lives here.
#pragma once

#include <functional>

#include <CLI/CLI.hpp>

namespace spikeflow::cli {

using Command = std::function<int()>;

Command add_synth(CLI::App& app);
Command add_train(CLI::App& app);
Command add_pretrain(CLI::App& app);
Command add_calibrate(CLI::App& app);
Command add_run(CLI::App& app);
Command add_send(CLI::App& app);
Command add_listen(CLI::App& app);
Command add_eval(CLI::App& app);
Command add_replay(CLI::App& app);
Command add_profile(CLI::App& app);
Command add_keygen(CLI::App& app);
Command add_export(CLI::App& app);
Command add_inspect(CLI::App& app);
Command add_soak(CLI::App& app);

}  // namespace spikeflow::cli
