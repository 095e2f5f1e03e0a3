// The exit codes of every spikeflow subcommand, defined once (README.md, "Exit codes").
// main.cpp maps what escapes a command onto them by type: a CLI11 parse error, a
// pipeline::ConfigError or a UsageError is kUsage; a core::InputFileError is kInputFile; an
// ExitError carries its own code; anything else is kFailure. Commands return kOk or kMismatch.
#pragma once

#include <stdexcept>
#include <string>

namespace spikeflow::cli {

enum ExitCode : int {
  kOk = 0,         ///< done; SIGINT/SIGTERM on run / listen also end here once drained
  kFailure = 1,    ///< a runtime failure (socket, device, model, I/O while running)
  kUsage = 2,      ///< a bad flag or flag combination, or a config (file) that cannot be used
  kInputFile = 3,  ///< an input file is missing, not a regular file, unreadable, empty, of the
                   ///< wrong kind, damaged, or holds values it must not (NaN predictions)
  kMismatch = 4,   ///< inputs read fine but do not agree: a replay not bit-identical to its
                   ///< recording, or predictions that leave chunks of the session unscored
};

/// A wrong flag combination found after parsing ("eval needs --predictions or --recording").
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A one-line error with a chosen exit code (used for kMismatch after a command printed its
/// summary).
class ExitError : public std::runtime_error {
 public:
  ExitError(ExitCode code, const std::string& what) : std::runtime_error(what), code_(code) {}
  ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

}  // namespace spikeflow::cli
