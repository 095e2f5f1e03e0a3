// CPU lists as the realtime.affinity.* keys write them ("0-1,3"): parsed by the config reader
// (pipeline/config_keys.cpp) and applied by pipeline/realtime.*. No threads, no TBB: the config
// fuzz target compiles it.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace spikeflow::pipeline {

/// "0-1,3" -> {0, 1, 3} (sorted, unique). Empty text -> empty list (the knob is off). Nullopt and
/// *why set for anything else malformed: a non-number, a range going down, a CPU >= CPU_SETSIZE.
std::optional<std::vector<int>> parse_cpu_list(const std::string& text, std::string* why);

/// "0-1,3" for a sorted list.
std::string cpu_list_text(const std::vector<int>& cpus);

}  // namespace spikeflow::pipeline
