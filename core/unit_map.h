// UnitMap: (channel, unit code) of the acquisition system -> model unit index.
// Built from a session (replay) or a checkpoint (models); used by stages::Tokenizer.
// Lookup is O(1) and allocation-free: a dense table indexed by channel, then unit code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace spikeflow::core {

struct UnitKey {
  uint32_t channel = 0;
  uint16_t unit = 0;
  bool operator==(const UnitKey&) const = default;
};

class UnitMap {
 public:
  static constexpr int32_t kUnknown = -1;

  UnitMap() = default;
  /// Index i of keys becomes model unit i. Throws std::invalid_argument on duplicates or on a
  /// channel above kMaxChannel / unit above kMaxUnitCode.
  explicit UnitMap(std::vector<UnitKey> keys);

  static constexpr uint32_t kMaxChannel = 65535;
  static constexpr uint16_t kMaxUnitCode = 255;

  /// Model index of (channel, unit), or kUnknown. Never throws, never allocates.
  int32_t find(uint32_t channel, uint16_t unit) const {
    if (channel >= channels_ || unit >= units_per_channel_) return kUnknown;
    return table_[static_cast<size_t>(channel) * units_per_channel_ + unit];
  }

  size_t size() const { return keys_.size(); }
  const std::vector<UnitKey>& keys() const { return keys_; }

 private:
  std::vector<UnitKey> keys_;
  std::vector<int32_t> table_;
  uint32_t channels_ = 0;
  uint32_t units_per_channel_ = 0;
};

}  // namespace spikeflow::core
