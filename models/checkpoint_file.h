// CheckpointFile: the one-file container every decoder checkpoint uses (POSSM, ridge, Kalman),
// torch-free. A kind tag selects the decoder; text metadata holds config, unit map, target
// normalization and chunk width; an opaque payload holds the weights (a torch archive for POSSM,
// raw floats for the baselines).
//
// Byte layout (little-endian):
//   "SPKFLWCK"             8 bytes magic
//   u32 container_version  (kContainerVersion)
//   u64 total_size         size of the whole file, checksum included (detects truncation)
//   str kind               (u32 length + bytes)
//   u32 kind_version
//   u32 meta_count, then meta_count × (str key, str value)
//   u64 payload_size, payload bytes
//   u64 checksum           core::fnv1a64 of every byte before it (detects corruption)
// Written to "<path>.tmp" and renamed, so a crash never leaves a half-written checkpoint.
// Used by models/ only (load_decoder dispatches on kind).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/unit_map.h"

namespace spikeflow::models {

class CheckpointFile {
 public:
  static constexpr uint32_t kContainerVersion = 1;

  std::string kind;           ///< "possm", "ridge", "kalman"
  uint32_t kind_version = 1;  ///< format version of that kind's metadata and payload
  std::map<std::string, std::string> meta;
  std::string payload;  ///< opaque bytes

  /// Writes the file atomically (tmp + rename). Throws std::runtime_error naming the path.
  void write(const std::string& path) const;
  /// Reads and verifies (magic, size, checksum). Throws std::runtime_error naming the path and
  /// what is wrong: missing, truncated, corrupt, not a checkpoint, unsupported container version.
  static CheckpointFile read(const std::string& path);

  // Typed metadata access. Getters throw std::runtime_error("... key 'k' missing/invalid")
  // (without the path: callers wrap with it).
  void set_string(const std::string& key, std::string value) { meta[key] = std::move(value); }
  void set_int(const std::string& key, int64_t value);
  void set_double(const std::string& key, double value);
  void set_floats(const std::string& key, const std::vector<float>& values);
  void set_units(const std::string& key, const std::vector<core::UnitKey>& units);
  void set_strings(const std::string& key, const std::vector<std::string>& values);

  const std::string& get_string(const std::string& key) const;
  int64_t get_int(const std::string& key) const;
  double get_double(const std::string& key) const;
  std::vector<float> get_floats(const std::string& key) const;
  std::vector<core::UnitKey> get_units(const std::string& key) const;
  std::vector<std::string> get_strings(const std::string& key) const;
};

/// The kind tag of a checkpoint file without decoding its payload (throws like read()).
std::string checkpoint_kind(const std::string& path);

}  // namespace spikeflow::models
