#include "replay/behavior_file.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include "core/file_check.h"
#include "replay/recording_file.h"
#include "replay/session_file.h"

namespace spikeflow::replay {

namespace {

/// Seconds with `digits` decimals (replay/ has no fmt).
std::string seconds(int64_t ns, int digits = 3) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, static_cast<double>(ns) / 1e9);
  return buf;
}

std::vector<std::string> split_csv(const std::string& line) {
  std::vector<std::string> out;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) {
    const auto b = cell.find_first_not_of(" \t");
    const auto e = cell.find_last_not_of(" \t");
    out.push_back(b == std::string::npos ? std::string() : cell.substr(b, e - b + 1));
  }
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

bool parse_number(const std::string& s, double& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  v = std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size() && errno == 0;
}

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

BehaviorSeries read_behavior_csv(const std::string& path) {
  core::check_input_file(path, "behaviour file");
  std::ifstream in(path);
  if (!in) throw core::InputFileError(path + ": cannot open the behaviour file");
  BehaviorSeries b;
  std::string line;
  size_t line_no = 0;
  bool header = false;
  auto fail = [&](const std::string& what) {
    throw core::InputFileError(path + ":" + std::to_string(line_no) + ": " + what);
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || line[0] == '#') continue;
    const auto cells = split_csv(line);
    if (!header) {
      if (cells.size() < 2 || cells[0] != "t_s")
        fail("expected a header 't_s,NAME,...' (device time in seconds, then one column per "
             "behaviour dimension), got '" + line + "'");
      for (size_t i = 1; i < cells.size(); ++i) {
        if (cells[i].empty()) fail("column " + std::to_string(i + 1) + " of the header has no name");
        b.names.push_back(cells[i]);
      }
      header = true;
      continue;
    }
    if (cells.size() != b.names.size() + 1)
      fail(std::to_string(cells.size()) + " columns, the header has " +
           std::to_string(b.names.size() + 1));
    double t = 0;
    if (!parse_number(cells[0], t) || !std::isfinite(t))
      fail("t_s '" + cells[0] + "' is not a finite number");
    const double t_ns = std::round(t * 1e9);
    if (std::abs(t_ns) > 9.2e18) fail("t_s " + cells[0] + " is out of range");
    const auto ns = static_cast<int64_t>(t_ns);
    if (!b.t_ns.empty() && ns <= b.t_ns.back())
      fail("t_s " + cells[0] + " is not after the previous sample (" + seconds(b.t_ns.back(), 9) +
           " s): times must be strictly ascending");
    b.t_ns.push_back(ns);
    for (size_t i = 1; i < cells.size(); ++i) {
      double v = 0;
      if (!parse_number(cells[i], v) || !std::isfinite(v))
        fail(b.names[i - 1] + " '" + cells[i] + "' is not a finite number");
      if (!std::isfinite(static_cast<float>(v)))
        fail(b.names[i - 1] + " '" + cells[i] + "' is out of float range");
      b.values.push_back(static_cast<float>(v));
    }
  }
  if (!header) throw core::InputFileError(path + ": behaviour file has no header line 't_s,...'");
  if (b.t_ns.size() < 2)
    throw core::InputFileError(
        path + ": behaviour file has " + std::to_string(b.t_ns.size()) +
        " sample(s), at least 2 are needed");
  return b;
}

}  // namespace

BehaviorSeries behavior_of(const Session& s) {
  return {s.behavior_names, s.behavior_t_ns, s.behavior};
}

BehaviorSeries read_behavior_file(const std::string& path) {
  if (lower_extension(path) == ".csv") return read_behavior_csv(path);
  BehaviorSeries b = behavior_of(load_session(path));
  if (b.names.empty() || b.t_ns.size() < 2)
    throw core::InputFileError(path + ": session file has no behaviour series");
  return b;
}

void write_behavior_csv(const BehaviorSeries& b, const std::string& path) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    if (!out) throw std::runtime_error(path + ": cannot write the behaviour file");
    out << "t_s";
    for (const auto& n : b.names) out << ',' << n;
    out << '\n';
    const size_t dim = b.names.size();
    for (size_t i = 0; i < b.t_ns.size(); ++i) {
      out << seconds(b.t_ns[i], 9);
      char buf[32];
      for (size_t d = 0; d < dim; ++d) {
        std::snprintf(buf, sizeof buf, ",%.9g", static_cast<double>(b.values[i * dim + d]));
        out << buf;
      }
      out << '\n';
    }
    out.flush();
    if (!out) throw std::runtime_error(path + ": write failed");
  }
  std::filesystem::rename(tmp, path);
}

Session session_from_recording(const Recording& rec, const std::string& recording_path,
                               const BehaviorSeries& behavior, const std::string& behavior_path,
                               int64_t slack_ns) {
  // Keyed (channel << 16 | unit): sorted by channel, then unit.
  std::map<uint64_t, std::vector<int64_t>> spikes;
  for (const auto& batch : rec.batches) {
    for (const auto& e : batch.events)
      spikes[(static_cast<uint64_t>(e.channel) << 16) | e.unit].push_back(e.t_ns);
  }
  if (spikes.empty())
    throw core::InputFileError(recording_path + ": the recording holds no spikes");
  Session s;
  int64_t first = INT64_MAX, last = INT64_MIN;
  for (auto& [key, times] : spikes) {
    std::sort(times.begin(), times.end());
    first = std::min(first, times.front());
    last = std::max(last, times.back());
    s.units.push_back(
        core::UnitKey{static_cast<uint32_t>(key >> 16), static_cast<uint16_t>(key & 0xffff)});
    s.spike_times_ns.push_back(std::move(times));
  }
  s.start_ns = first;
  s.end_ns = last + 1;
  const int64_t b_first = behavior.t_ns.front(), b_last = behavior.t_ns.back();
  const std::string spans = " s but the spikes of " + recording_path + " span " +
                            seconds(s.start_ns) + "-" + seconds(s.end_ns) + " s (device clock)";
  if (b_last < s.start_ns || b_first >= s.end_ns) {
    throw core::InputFileError(behavior_path + ": behaviour (" + seconds(b_first) + "-" +
                               seconds(b_last) + " s) does not overlap the spikes of " +
                               recording_path + " (" + seconds(s.start_ns) + "-" +
                               seconds(s.end_ns) +
                               " s, device clock): are both on the same clock?");
  }
  if (b_first > s.start_ns + slack_ns || b_last < s.end_ns - slack_ns) {
    throw core::InputFileError(behavior_path + ": behaviour covers " + seconds(b_first) + "-" +
                               seconds(b_last) + spans + ": it must cover them");
  }
  // The behaviour inside the extent, plus one sample either side for interpolation.
  const size_t dim = behavior.names.size();
  auto lo = std::lower_bound(behavior.t_ns.begin(), behavior.t_ns.end(), s.start_ns);
  auto hi = std::upper_bound(behavior.t_ns.begin(), behavior.t_ns.end(), s.end_ns);
  if (lo != behavior.t_ns.begin()) --lo;
  if (hi != behavior.t_ns.end()) ++hi;
  const auto i0 = static_cast<size_t>(lo - behavior.t_ns.begin());
  const auto i1 = static_cast<size_t>(hi - behavior.t_ns.begin());
  s.behavior_names = behavior.names;
  s.behavior_t_ns.assign(behavior.t_ns.begin() + static_cast<std::ptrdiff_t>(i0),
                         behavior.t_ns.begin() + static_cast<std::ptrdiff_t>(i1));
  s.behavior.assign(behavior.values.begin() + static_cast<std::ptrdiff_t>(i0 * dim),
                    behavior.values.begin() + static_cast<std::ptrdiff_t>(i1 * dim));
  s.validate(recording_path + " + " + behavior_path);
  return s;
}

}  // namespace spikeflow::replay
