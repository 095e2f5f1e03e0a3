#include "pipeline/cpu_list.h"

#include <sched.h>

#include <charconv>
#include <set>

#include <fmt/format.h>

namespace spikeflow::pipeline {

namespace {

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

bool parse_cpu(const std::string& s, int& v) {
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && end == s.data() + s.size() && v >= 0;
}

}  // namespace

std::string cpu_list_text(const std::vector<int>& cpus) {
  std::string out;
  for (size_t i = 0; i < cpus.size();) {
    size_t j = i;
    while (j + 1 < cpus.size() && cpus[j + 1] == cpus[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += j == i ? fmt::format("{}", cpus[i]) : fmt::format("{}-{}", cpus[i], cpus[j]);
    i = j + 1;
  }
  return out;
}

std::optional<std::vector<int>> parse_cpu_list(const std::string& text, std::string* why) {
  std::set<int> cpus;
  const std::string all = trim(text);
  if (all.empty()) return std::vector<int>{};
  size_t start = 0;
  for (;;) {
    const size_t comma = all.find(',', start);
    const std::string item = trim(all.substr(start, comma - start));
    const size_t dash = item.find('-');
    int lo = 0, hi = 0;
    const bool ok = dash == std::string::npos
                        ? parse_cpu(item, lo) && parse_cpu(item, hi)
                        : parse_cpu(trim(item.substr(0, dash)), lo) &&
                              parse_cpu(trim(item.substr(dash + 1)), hi);
    if (!ok) {
      if (why) *why = fmt::format("'{}' is not a CPU number or range (expected e.g. 0-1,3)", item);
      return std::nullopt;
    }
    if (hi < lo) {
      if (why) *why = fmt::format("range '{}' goes down", item);
      return std::nullopt;
    }
    if (hi >= CPU_SETSIZE) {
      if (why) *why = fmt::format("CPU {} is beyond the largest CPU number ({})", hi, CPU_SETSIZE - 1);
      return std::nullopt;
    }
    for (int c = lo; c <= hi; ++c) cpus.insert(c);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return std::vector<int>(cpus.begin(), cpus.end());
}

}  // namespace spikeflow::pipeline
