// The one check every reader runs before it opens an input file (session, recording, checkpoint,
// predictions CSV, config), and the content sniffing that tells which of spikeflow's file kinds a
// file really is, so that a wrong file gets a one-line error naming it and the problem ("x: is a
// directory, not a checkpoint", "x.mat is an HDF5 file without MATLAB's header") instead of a
// stream error or another format's wording.
// Used by replay/, models/ (checkpoint_file.cpp), pipeline/ and cli/; no state, safe to call from
// any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>

namespace spikeflow::core {

/// An input file is missing, unreadable, not what was asked for, or damaged. The message names
/// the file. The CLI exits with its input-file code (cli/exit_codes.h) on this type.
class InputFileError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// What is wrong with `path` as an input file, or nullopt when it is a readable, non-empty
/// regular file. `noun` names what it should be ("checkpoint", "session file"); the text does not
/// start with the path, e.g. "no such checkpoint", "is a directory, not a checkpoint",
/// "checkpoint is empty (0 bytes)", "cannot read checkpoint (Permission denied)",
/// "is a fifo, not a regular file", "no checkpoint named (empty path)".
std::optional<std::string> input_file_problem(const std::string& path, std::string_view noun);

/// Throws InputFileError("<path>: <problem>") when input_file_problem finds one.
void check_input_file(const std::string& path, std::string_view noun);

/// Runs f; a std::runtime_error it throws that is not already an InputFileError comes back out as
/// one with the same message. Readers wrap their public entry points in it so that every failure
/// to read a file, damage included, maps to the input-file exit code.
template <typename F>
auto as_input_file_error(F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const InputFileError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw InputFileError(e.what());
  }
}

/// File kinds told apart by their first bytes.
enum class FileFormat {
  kUnknown,
  kSessionFile,  ///< spikeflow .sfs: "SFSESS\0\1" (replay/SESSION_FORMAT.md)
  kRecording,    ///< spikeflow .sfrec: "SFREC\0\0\1" (replay/RECORDING_FORMAT.md)
  kCheckpoint,   ///< spikeflow checkpoint: "SPKFLWCK" (models/checkpoint_file.h)
  kMatV5,        ///< MATLAB v5-v7.2: 116-byte text header "MATLAB 5.0 MAT-file..."
  kMatV73,       ///< MATLAB v7.3: that text header ("MATLAB 7.3 MAT-file"), HDF5 at offset 512
  kHdf5,         ///< HDF5 signature "\x89HDF\r\n\x1a\n" at offset 0 (NWB 2.x files are HDF5)
};

/// Bytes sniff_format needs to tell every kind apart (a v7.3 MAT file's HDF5 signature sits at
/// 512).
inline constexpr size_t kSniffBytes = 520;

/// The kind of a file from its first bytes (up to kSniffBytes; fewer is fine). MAT-file header per
/// MathWorks' "MAT-File Format" (v5: text header, subsystem offset, version 0x0100, endian
/// "IM"/"MI"; v7.3: the same text in a 512-byte HDF5 user block); HDF5 signature per the HDF5 File
/// Format Specification, "Format Signature".
FileFormat sniff_format(std::span<const uint8_t> head);

/// Reads the first kSniffBytes of path and sniffs them; kUnknown when it cannot be read.
FileFormat sniff_file(const std::string& path);

/// "a spikeflow session file (.sfs)", "an HDF5 file", ... for messages.
std::string_view describe(FileFormat f);

}  // namespace spikeflow::core
