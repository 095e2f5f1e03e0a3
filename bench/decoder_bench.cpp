// Streaming decoder benchmarks: one step() per iteration on Poisson chunks (~15 Hz per unit,
// 50 ms chunks, so ~units × 0.75 tokens per chunk), POSSM small config (dim 64, GRU 256) at 96 /
// 171 / 1024 units, on both inference paths loaded from the same checkpoint: LibTorch on 1
// intra-op thread ("torch") and the plain C++ fast path ("fast", single-threaded); also a catch-up
// step_many of 8 (and 64, replay) chunks on both, the live way of stepping (step timed, then
// prepare_next() untimed), and the ridge / Kalman baselines. Per-chunk p50 / p99 / max (µs)
// are reported as counters (one timing per iteration); the fast benchmarks add the torch / fast
// p50 ratio measured in the same run, and a table of both paths is printed at the end. The build
// type and thread count go into the context.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "models/baselines.h"
#include "models/load_decoder.h"
#include "models/trainer.h"

namespace {

using namespace spikeflow;

constexpr int64_t kWidthNs = 50'000'000;
constexpr double kRateHz = 15.0;
constexpr int kThreads = 1;

std::vector<core::UnitKey> make_units(int n) {
  std::vector<core::UnitKey> u;
  for (int i = 0; i < n; ++i)
    u.push_back({static_cast<uint32_t>(i / 4 + 1), static_cast<uint16_t>(i % 4 + 1)});
  return u;
}

std::vector<core::TokenChunk> make_chunks(int units, size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::poisson_distribution<int> count(units * kRateHz * 0.05);
  std::uniform_int_distribution<int32_t> unit(0, units - 1);
  std::uniform_real_distribution<float> off(0.f, 0.05f);
  std::vector<core::TokenChunk> chunks(n);
  for (size_t i = 0; i < n; ++i) {
    auto& c = chunks[i];
    c.seq = static_cast<int64_t>(i);
    std::vector<std::pair<float, int32_t>> t(static_cast<size_t>(count(rng)));
    for (auto& [o, u] : t) {
      o = off(rng);
      u = unit(rng);
    }
    std::sort(t.begin(), t.end());
    for (const auto& [o, u] : t) {
      c.unit.push_back(u);
      c.offset_s.push_back(o);
    }
  }
  return chunks;
}

core::DecodingDataset make_dataset(int units, size_t n) {
  core::DecodingDataset d;
  d.width_ns = kWidthNs;
  d.units = make_units(units);
  d.chunks = make_chunks(units, n, 7);
  std::mt19937_64 rng(3);
  std::normal_distribution<float> g;
  for (size_t i = 0; i < n * 2; ++i) d.targets.push_back(g(rng));
  return d;
}

void report(benchmark::State& state, std::vector<double>& us, double tokens) {
  std::sort(us.begin(), us.end());
  auto pct = [&](double p) {
    return us.empty() ? 0.0 : us[std::min(us.size() - 1, static_cast<size_t>(p * us.size()))];
  };
  state.counters["p50_us"] = pct(0.50);
  state.counters["p99_us"] = pct(0.99);
  state.counters["max_us"] = us.empty() ? 0.0 : us.back();
  state.counters["tokens_per_chunk"] = tokens;
}

/// One step() per iteration, timed. With `prepared`, prepare_next() follows each step untimed, as
/// in the live pipeline (where it runs after the prediction is handed on): the step's time is
/// then the chunk's critical path, and prepare_next() and step + prepare_next() (the whole
/// compute per chunk) are reported as extra counters.
void run_steps(benchmark::State& state, models::StreamingDecoder& dec,
               const std::vector<core::TokenChunk>& chunks, bool prepared = false) {
  std::vector<float> out(static_cast<size_t>(dec.output_dim()));
  std::vector<double> us, prep_us, total_us;
  us.reserve(1 << 16);
  size_t i = 0;
  double tokens = 0;
  for (auto& c : chunks) tokens += static_cast<double>(c.size());
  dec.reset();
  for (int w = 0; w < 20; ++w)
    dec.step(chunks[static_cast<size_t>(w) % chunks.size()], out);  // warm-up
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    dec.step(chunks[i], out);
    const auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(out.data());
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    if (prepared) {
      dec.prepare_next();
      const auto t2 = std::chrono::steady_clock::now();
      prep_us.push_back(std::chrono::duration<double, std::micro>(t2 - t1).count());
      total_us.push_back(std::chrono::duration<double, std::micro>(t2 - t0).count());
    }
    if (++i == chunks.size()) i = 0;
  }
  report(state, us, tokens / static_cast<double>(chunks.size()));
  if (prepared) {
    std::sort(prep_us.begin(), prep_us.end());
    std::sort(total_us.begin(), total_us.end());
    const auto pct = [](const std::vector<double>& v, double p) {
      return v.empty() ? 0.0 : v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
    };
    state.counters["prepare_p50_us"] = pct(prep_us, 0.5);
    state.counters["step+prepare_p50_us"] = pct(total_us, 0.5);
    state.counters["step+prepare_p99_us"] = pct(total_us, 0.99);
  }
}

// ---------------------------------------------------------------- POSSM, both paths

/// An untrained small-config checkpoint per unit count (written once per run), so that both
/// paths load the same weights through load_decoder(), as the pipeline does.
std::map<int, std::string>& checkpoint_paths() {
  static std::map<int, std::string> paths;
  return paths;
}

std::string checkpoint_for(int units) {
  auto& paths = checkpoint_paths();
  auto it = paths.find(units);
  if (it != paths.end()) return it->second;
  const auto path = (std::filesystem::temp_directory_path() /
                     ("spikeflow_decoder_bench_" + std::to_string(units) + ".ckpt"))
                        .string();
  models::save_untrained_possm(path, models::PossmConfig{}, make_units(units), 2, kWidthNs);
  return paths.emplace(units, path).first->second;
}

std::unique_ptr<models::StreamingDecoder> load_possm(int units, const char* path) {
  models::RuntimeOptions rt;
  rt.threads = kThreads;
  rt.path = path;
  return models::load_decoder(checkpoint_for(units), rt);
}

struct Percentiles {
  double p50 = 0, p99 = 0;
};
/// (benchmark, units, path) -> percentiles, for the ratio counters and the closing table.
std::map<std::tuple<std::string, int, std::string>, Percentiles>& results() {
  static std::map<std::tuple<std::string, int, std::string>, Percentiles> r;
  return r;
}

void record(benchmark::State& state, const char* bench, int units, const char* path) {
  Percentiles p{state.counters["p50_us"], state.counters["p99_us"]};
  results()[{bench, units, path}] = p;
  if (std::string(path) == "fast") {
    auto torch = results().find({bench, units, "torch"});
    if (torch != results().end() && p.p50 > 0)
      state.counters["torch_over_fast_p50"] = torch->second.p50 / p.p50;
  }
}

void possm_step(benchmark::State& state, const char* path, bool prepared = false) {
  const int units = static_cast<int>(state.range(0));
  auto dec = load_possm(units, path);
  const auto chunks = make_chunks(units, 512, 1);
  state.SetLabel(dec->describe());
  run_steps(state, *dec, chunks, prepared);
  record(state, prepared ? "step(live)" : "step", units, path);
}

void BM_PossmTorchStep(benchmark::State& state) { possm_step(state, "torch"); }
BENCHMARK(BM_PossmTorchStep)->Arg(96)->Arg(171)->Arg(1024)->Unit(benchmark::kMicrosecond);

void BM_PossmFastStep(benchmark::State& state) { possm_step(state, "fast"); }
BENCHMARK(BM_PossmFastStep)->Arg(96)->Arg(171)->Arg(1024)->Unit(benchmark::kMicrosecond);

/// As the live pipeline runs them: step() timed (the critical path from chunk to prediction),
/// prepare_next() after it untimed (reported as counters). The torch path has no prepare work,
/// so its "step(live)" is its plain step.
void BM_PossmTorchStepLive(benchmark::State& state) { possm_step(state, "torch", true); }
BENCHMARK(BM_PossmTorchStepLive)->Arg(96)->Arg(171)->Arg(1024)->Unit(benchmark::kMicrosecond);

void BM_PossmFastStepLive(benchmark::State& state) { possm_step(state, "fast", true); }
BENCHMARK(BM_PossmFastStepLive)->Arg(96)->Arg(171)->Arg(1024)->Unit(benchmark::kMicrosecond);

/// Catch-up and replay: n chunks in one step_many call; times are per chunk.
void possm_step_many(benchmark::State& state, const char* path, size_t n) {
  const int units = static_cast<int>(state.range(0));
  auto dec = load_possm(units, path);
  const auto chunks = make_chunks(units, 512, 2);
  state.SetLabel(dec->describe());
  std::vector<const core::TokenChunk*> batch(n);
  std::vector<float> out(2 * n);
  std::vector<double> us;
  us.reserve(1 << 14);
  size_t i = 0;
  for (auto _ : state) {
    for (size_t j = 0; j < n; ++j) batch[j] = &chunks[(i + j) % chunks.size()];
    const auto t0 = std::chrono::steady_clock::now();
    dec->step_many(batch, out);
    const auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(out.data());
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() /
                 static_cast<double>(n));
    i = (i + n) % chunks.size();
  }
  report(state, us, static_cast<double>(units) * kRateHz * 0.05);
  record(state, n == 8 ? "step_many8" : "step_many64", units, path);
}

void BM_PossmTorchStepMany8(benchmark::State& state) { possm_step_many(state, "torch", 8); }
BENCHMARK(BM_PossmTorchStepMany8)->Arg(96)->Arg(171)->Arg(1024)->Unit(benchmark::kMicrosecond);

void BM_PossmFastStepMany8(benchmark::State& state) { possm_step_many(state, "fast", 8); }
BENCHMARK(BM_PossmFastStepMany8)->Arg(96)->Arg(171)->Arg(1024)->Unit(benchmark::kMicrosecond);

/// Replay's batches (cmd replay --max-batch 64).
void BM_PossmTorchStepMany64(benchmark::State& state) { possm_step_many(state, "torch", 64); }
BENCHMARK(BM_PossmTorchStepMany64)->Arg(171)->Unit(benchmark::kMicrosecond);

void BM_PossmFastStepMany64(benchmark::State& state) { possm_step_many(state, "fast", 64); }
BENCHMARK(BM_PossmFastStepMany64)->Arg(171)->Unit(benchmark::kMicrosecond);

/// Both paths side by side (µs per chunk), from the runs above.
void print_comparison() {
  bool header = false;
  for (const auto& [key, torch] : results()) {
    const auto& [bench, units, path] = key;
    if (path != "torch") continue;
    auto fast = results().find({bench, units, "fast"});
    if (fast == results().end()) continue;
    if (!header) {
      std::printf("\n%-11s %6s %10s %10s %10s %10s %12s\n", "POSSM", "units", "torch p50",
                  "torch p99", "fast p50", "fast p99", "torch/fast");
      header = true;
    }
    const Percentiles& f = fast->second;
    std::printf("%-11s %6d %10.1f %10.1f %10.1f %10.1f %11.1fx\n", bench.c_str(), units, torch.p50,
                torch.p99, f.p50, f.p99, f.p50 > 0 ? torch.p50 / f.p50 : 0.0);
  }
}

void BM_RidgeStep(benchmark::State& state) {
  const int units = static_cast<int>(state.range(0));
  auto fit = models::fit_ridge(make_dataset(units, 2000), {5, 1.0});
  run_steps(state, *fit.decoder, make_chunks(units, 512, 1));
}
BENCHMARK(BM_RidgeStep)->Arg(96)->Unit(benchmark::kMicrosecond);

void BM_KalmanStep(benchmark::State& state) {
  const int units = static_cast<int>(state.range(0));
  auto fit = models::fit_kalman(make_dataset(units, 2000));
  run_steps(state, *fit.decoder, make_chunks(units, 512, 1));
}
BENCHMARK(BM_KalmanStep)->Arg(96)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("build_type", SPIKEFLOW_BUILD_TYPE);
  benchmark::AddCustomContext("torch_intra_op_threads", std::to_string(kThreads));
  benchmark::AddCustomContext("fast_path_threads", "1");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  print_comparison();
  for (const auto& [units, path] : checkpoint_paths()) std::filesystem::remove(path);
  benchmark::Shutdown();
  return 0;
}
