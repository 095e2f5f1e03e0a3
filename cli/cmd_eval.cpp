#include <fmt/format.h>

#include <fstream>
#include <sstream>
#include <unordered_map>

#include "cli/commands.h"
#include "cli/split.h"
#include "core/r2.h"
#include "core/time.h"
#include "replay/dataset.h"
#include "replay/session_file.h"

namespace spikeflow::cli {

namespace {

struct EvalArgs {
  std::string session, predictions;
  std::string part = "test";
  double train_fraction = 0.7, val_fraction = 0.1, width_ms = 50.0;
};

/// seq -> (v0, v1) from a `spikeflow listen --out` CSV.
std::unordered_map<int64_t, std::array<float, 2>> read_predictions(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(path + ": cannot open predictions file");
  std::string line;
  std::getline(in, line);
  if (line.rfind("seq,", 0) != 0) throw std::runtime_error(path + ": not a predictions CSV (bad header)");
  std::unordered_map<int64_t, std::array<float, 2>> out;
  size_t lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    std::stringstream ss(line);
    std::string f[7];
    for (auto& x : f) std::getline(ss, x, ',');
    try {
      out[std::stoll(f[0])] = {std::stof(f[5]), std::stof(f[6])};
    } catch (const std::exception&) {
      throw std::runtime_error(fmt::format("{}:{}: malformed row", path, lineno));
    }
  }
  return out;
}

}  // namespace

Command add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  app.add_option("-s,--session", a->session, "session with the true behaviour")->required();
  app.add_option("-p,--predictions", a->predictions, "CSV written by `spikeflow listen --out`")->required();
  app.add_option("--part", a->part, "all | test")->check(CLI::IsMember({"all", "test"}))->capture_default_str();
  app.add_option("--train-fraction", a->train_fraction, "as for train")->capture_default_str();
  app.add_option("--val-fraction", a->val_fraction, "as for train")->capture_default_str();
  app.add_option("--width-ms", a->width_ms, "chunk width")->capture_default_str();
  return [a] {
    const int64_t width_ns = static_cast<int64_t>(a->width_ms * core::kNsPerMs);
    replay::Session s = replay::load_session(a->session);
    replay::DatasetOptions o;
    o.width_ns = width_ns;
    o.from_ns = a->part == "test" ? make_split(s, a->train_fraction, a->val_fraction, width_ns).test_from : s.start_ns;
    o.to_ns = s.end_ns;
    const auto data = replay::build_dataset(s, o);
    const auto preds = read_predictions(a->predictions);
    std::vector<float> truth, pred;
    size_t missing = 0;
    for (size_t i = 0; i < data.size(); ++i) {
      auto it = preds.find(data.chunks[i].seq);
      if (it == preds.end()) {
        ++missing;
        continue;
      }
      for (int d = 0; d < std::min(data.output_dim, 2); ++d) {
        truth.push_back(data.target(i)[d]);
        pred.push_back(it->second[static_cast<size_t>(d)]);
      }
    }
    const int dim = std::min(data.output_dim, 2);
    if (truth.empty()) throw std::runtime_error("no prediction matches a chunk of the evaluated part");
    const auto r2 = core::r2_per_dim(truth, pred, dim);
    fmt::print("eval: {} of {} chunks predicted ({} missing); R2 {} = {:.3f}, {} = {:.3f}; mean {:.3f}\n",
               data.size() - missing, data.size(), missing, data.output_names[0], r2[0],
               dim > 1 ? data.output_names[1] : "-", dim > 1 ? r2[1] : 0.0, core::mean_r2(truth, pred, dim));
    return missing == 0 ? 0 : 2;
  };
}

}  // namespace spikeflow::cli
