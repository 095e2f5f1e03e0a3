// The CSV `spikeflow listen --out` writes, one row per received prediction, and its one reader
// (`spikeflow eval -p` scores it, `spikeflow profile` times it: pipeline/profile_experiment.h).
#pragma once

#include <fmt/format.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/file_check.h"
#include "core/prediction.h"

namespace spikeflow::pipeline {

/// seq is the wire sequence number (+1 per published prediction); chunk_index and epoch place the
/// chunk on the device clock. Files written before epochs (header starting "seq,start_ns") are
/// still read, with chunk_index = seq and epoch = 0.
inline constexpr const char* kListenCsvHeader =
    "seq,chunk_index,epoch,start_ns,end_ns,flags,n_tokens,v0,v1,trigger_arrival_ns,publish_ns,"
    "receive_ns";

struct ReceivedPrediction {
  core::Prediction prediction;  ///< values (2) and the timing fields the CSV carries
  int64_t receive_ns = 0;       ///< the subscriber's CLOCK_MONOTONIC at receipt
};

/// Every row of a listen CSV. A missing, empty or unreadable file, another header, a malformed
/// row or a NaN / inf value is a core::InputFileError naming the file (and the line): a NaN
/// would make every score computed from the file NaN.
inline std::vector<ReceivedPrediction> read_listen_csv(const std::string& path) {
  core::check_input_file(path, "predictions file");
  std::ifstream in(path);
  if (!in) throw core::InputFileError(path + ": cannot open predictions file");
  std::string line;
  std::getline(in, line);
  if (line.rfind("seq,", 0) != 0)
    throw core::InputFileError(path + ": not a predictions CSV (bad header)");
  const bool with_epochs = line.rfind("seq,chunk_index,epoch,", 0) == 0;
  std::vector<ReceivedPrediction> out;
  size_t lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    std::stringstream ss(line);
    std::string cols[12];
    for (auto& x : cols) std::getline(ss, x, ',');
    try {
      ReceivedPrediction r;
      core::Prediction& p = r.prediction;
      p.seq = std::stoll(cols[0]);
      p.chunk_index = with_epochs ? std::stoll(cols[1]) : p.seq;
      p.epoch = with_epochs ? static_cast<uint32_t>(std::stoul(cols[2])) : 0;
      const std::string* f = with_epochs ? cols + 2 : cols;  // f[1] = start_ns in both layouts
      p.start_ns = std::stoll(f[1]);
      p.end_ns = std::stoll(f[2]);
      p.flags = static_cast<uint32_t>(std::stoul(f[3]));
      p.n_tokens = static_cast<uint32_t>(std::stoul(f[4]));
      p.output_dim = 2;
      p.values[0] = std::stof(f[5]);
      p.values[1] = std::stof(f[6]);
      p.timing.trigger_arrival_ns = std::stoll(f[7]);
      p.timing.publish_ns = std::stoll(f[8]);
      r.receive_ns = f[9].empty() ? 0 : std::stoll(f[9]);
      out.push_back(r);
    } catch (const std::exception&) {
      throw core::InputFileError(fmt::format("{}:{}: malformed row", path, lineno));
    }
    const core::Prediction& p = out.back().prediction;
    if (!std::isfinite(p.values[0]) || !std::isfinite(p.values[1])) {
      throw core::InputFileError(fmt::format("{}:{}: prediction value is not finite (v0 {}, v1 {})",
                                             path, lineno, p.values[0], p.values[1]));
    }
  }
  return out;
}

}  // namespace spikeflow::pipeline
