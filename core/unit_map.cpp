#include "core/unit_map.h"

#include <algorithm>
#include <stdexcept>

namespace spikeflow::core {

UnitMap::UnitMap(std::vector<UnitKey> keys) : keys_(std::move(keys)) {
  uint32_t max_channel = 0;
  uint32_t max_unit = 0;
  for (const auto& k : keys_) {
    if (k.channel > kMaxChannel) {
      throw std::invalid_argument("unit map: channel " + std::to_string(k.channel) +
                                  " exceeds the maximum " + std::to_string(kMaxChannel));
    }
    if (k.unit > kMaxUnitCode) {
      throw std::invalid_argument("unit map: unit code " + std::to_string(k.unit) +
                                  " exceeds the maximum " + std::to_string(kMaxUnitCode));
    }
    max_channel = std::max(max_channel, k.channel);
    max_unit = std::max<uint32_t>(max_unit, k.unit);
  }
  if (keys_.empty()) return;
  channels_ = max_channel + 1;
  units_per_channel_ = max_unit + 1;
  table_.assign(static_cast<size_t>(channels_) * units_per_channel_, kUnknown);
  for (size_t i = 0; i < keys_.size(); ++i) {
    auto& slot = table_[static_cast<size_t>(keys_[i].channel) * units_per_channel_ + keys_[i].unit];
    if (slot != kUnknown) {
      throw std::invalid_argument("unit map: duplicate unit (channel " +
                                  std::to_string(keys_[i].channel) + ", unit " +
                                  std::to_string(keys_[i].unit) + ")");
    }
    slot = static_cast<int32_t>(i);
  }
}

}  // namespace spikeflow::core
