// The fast streaming path (models/fast_possm_decoder.h) against the LibTorch path on the same
// weights: every output of a 60-chunk stream (state carried) within 1e-4, for GRU and S4D
// backbones, grouped-query heads, 2 latents, self-attention, sharpened weights; empty chunks, a
// 1-spike chunk, chunks of 1000+ spikes and a chunk of 200 ms offsets; reset(), step_many(),
// prepare_next(), errors, load_decoder's path.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <random>
#include <thread>

#include "models/fast_possm_export.h"
#include "models/load_decoder.h"
#include "models/trainer.h"
#include "synthetic_dataset.h"
#include "tests/common/test_support.h"

namespace spikeflow::models {
namespace {

using testing::make_synthetic;
using testing::SyntheticOptions;

constexpr int kUnits = 96;
constexpr size_t kChunks = 60;

/// Realistic chunks (cosine-tuned Poisson units) with the edge cases spliced in.
core::DecodingDataset test_stream() {
  SyntheticOptions o;
  o.num_units = kUnits;
  o.num_chunks = kChunks;
  auto d = make_synthetic(o);
  std::mt19937_64 rng(11);
  std::uniform_int_distribution<int32_t> unit(0, kUnits - 1);
  std::uniform_real_distribution<float> off(0.f, 0.05f);
  auto random_chunk = [&](core::TokenChunk& c, size_t n) {
    c.clear_tokens();
    std::vector<std::pair<float, int32_t>> t(n);
    for (auto& [o2, u] : t) {
      o2 = off(rng);
      u = unit(rng);
    }
    std::sort(t.begin(), t.end());
    for (const auto& [o2, u] : t) {
      c.unit.push_back(u);
      c.offset_s.push_back(o2);
    }
  };
  d.chunks[0].clear_tokens();  // empty first chunk, from the zero state
  d.chunks[1].clear_tokens();
  d.chunks[1].unit = {7};  // one spike
  d.chunks[1].offset_s = {0.0123f};
  random_chunk(d.chunks[4], 1200);  // bursts
  d.chunks[5].clear_tokens();       // empty right after a burst
  random_chunk(d.chunks[9], 3000);
  d.chunks[12].unit = {0, kUnits - 1, 3, 3};  // chunk edges: offset 0 and just below the width
  d.chunks[12].offset_s = {0.f, 0.0499999f, 0.025f, 0.025f};
  random_chunk(d.chunks[20], 1024);
  // Offsets of a 200 ms chunk (a model trained on wide chunks): angles up to ~12,600 rad, past
  // the fast path's float sin/cos range, so this chunk takes its double-precision path.
  d.chunks[25].unit = {1, 2, 3, 4};
  d.chunks[25].offset_s = {0.01f, 0.12f, 0.1999f, 0.1871f};
  for (size_t i = 30; i < kChunks; i += 7) d.chunks[i].clear_tokens();
  return d;
}

PossmMeta meta_for(const core::DecodingDataset& d, const PossmConfig& config) {
  PossmMeta m;
  m.config = config;
  m.units = d.units;
  m.output_dim = d.output_dim;
  m.width_ns = d.width_ns;
  m.target_mean = {0.5f, -2.f};
  m.target_std = {3.f, 0.25f};
  return m;
}

/// Makes the attention peaky and the recurrence stiffer than the init does, so that the
/// comparison also covers sharp softmaxes and saturated gates.
void sharpen(Possm& model) {
  torch::NoGradGuard g;
  model->cross->to_q->weight.mul_(4.f);
  model->cross->to_k->weight.mul_(4.f);
  for (auto& p : model->named_parameters()) {
    if (p.key().rfind("gru.", 0) == 0 || p.key().rfind("s4d.in_proj", 0) == 0) p.value().mul_(3.f);
  }
}

std::vector<float> run(StreamingDecoder& dec, const core::DecodingDataset& d) {
  const auto od = static_cast<size_t>(dec.output_dim());
  std::vector<float> out(d.size() * od);
  dec.reset();
  for (size_t i = 0; i < d.size(); ++i) dec.step(d.chunks[i], std::span<float>(&out[i * od], od));
  return out;
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0.f;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

void expect_fast_matches_torch(const PossmConfig& config, bool sharp, uint64_t seed) {
  const auto d = test_stream();
  const PossmMeta meta = meta_for(d, config);
  torch::manual_seed(seed);
  Possm model = make_possm(meta);
  if (sharp) sharpen(model);
  PossmDecoder torch_dec(model, meta, RuntimeOptions{});
  auto fast = make_fast_possm_decoder(model, meta);
  const auto ref = run(torch_dec, d);
  const auto got = run(*fast, d);
  // Spread of the standardized outputs over the stream: the comparison is not of constants.
  float scale = 0.f;
  for (size_t i = 0; i < ref.size(); ++i) {
    ASSERT_TRUE(std::isfinite(ref[i]));
    const size_t j = i % 2;
    scale = std::max(scale, std::fabs((ref[i] - ref[j]) / meta.target_std[j]));
  }
  for (float v : got) ASSERT_TRUE(std::isfinite(v));
  const float diff = max_abs_diff(ref, got);
  std::printf(
      "    %s: max |fast - torch| = %.3g over %zu chunks (spread of standardized outputs %.3g)\n",
      fast->describe().c_str(), static_cast<double>(diff), d.size(), static_cast<double>(scale));
  EXPECT_LE(diff, 1e-4f);
  EXPECT_GT(scale, 1e-2f);  // the outputs are not trivially zero
}

TEST(FastPossmTest, matches_torch_gru_small_config) {
  expect_fast_matches_torch(PossmConfig{}, /*sharp=*/false, 1);
}

TEST(FastPossmTest, matches_torch_gru_sharpened_weights) {
  expect_fast_matches_torch(PossmConfig{}, /*sharp=*/true, 2);
}

TEST(FastPossmTest, matches_torch_s4d) {
  PossmConfig c;
  c.backbone = "s4d";
  c.rnn_hidden = 96;
  expect_fast_matches_torch(c, /*sharp=*/false, 3);
  expect_fast_matches_torch(c, /*sharp=*/true, 4);
}

TEST(FastPossmTest, matches_torch_gqa_two_latents) {
  PossmConfig c;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.num_latents = 2;
  c.rnn_hidden = 128;
  expect_fast_matches_torch(c, /*sharp=*/true, 5);
  c.num_kv_heads = 1;
  c.dim = 32;  // head_dim 8: a single rotary pair per head
  expect_fast_matches_torch(c, /*sharp=*/false, 6);
}

TEST(FastPossmTest, matches_torch_self_attention_layers) {
  PossmConfig c;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.num_latents = 3;
  c.self_attn_layers = 2;
  c.rnn_hidden = 64;
  expect_fast_matches_torch(c, /*sharp=*/false, 7);
  c.backbone = "s4d";
  expect_fast_matches_torch(c, /*sharp=*/true, 8);
}

TEST(FastPossmTest, reset_and_step_many_repeat_step_exactly) {
  const auto d = test_stream();
  const PossmMeta meta = meta_for(d, PossmConfig{});
  torch::manual_seed(9);
  Possm model = make_possm(meta);
  auto fast = make_fast_possm_decoder(model, meta);
  const auto first = run(*fast, d);
  const auto again = run(*fast, d);  // run() resets first
  EXPECT_EQ(first, again);
  std::vector<float> batched(first.size());
  fast->reset();
  size_t i = 0;
  for (size_t n : {size_t{1}, size_t{8}, size_t{3}, kChunks - 12}) {
    std::vector<const core::TokenChunk*> ptrs;
    for (size_t j = 0; j < n; ++j) ptrs.push_back(&d.chunks[i + j]);
    fast->step_many(ptrs, std::span<float>(&batched[i * 2], n * 2));
    i += n;
  }
  EXPECT_EQ(first, batched);
  // prepare_next() between chunks (what the live pipeline does), also twice in a row and before
  // a step_many: the same results, bit for bit.
  std::vector<float> prepared(first.size());
  fast->reset();
  for (size_t k = 0; k < 40; ++k) {
    fast->step(d.chunks[k], std::span<float>(&prepared[k * 2], 2));
    fast->prepare_next();
    if (k % 5 == 0) fast->prepare_next();
  }
  std::vector<const core::TokenChunk*> rest;
  for (size_t k = 40; k < kChunks; ++k) rest.push_back(&d.chunks[k]);
  fast->step_many(rest, std::span<float>(&prepared[80], rest.size() * 2));
  EXPECT_EQ(first, prepared);
  // warm() before and after prepare_next(), twice in a row (the live pipeline's warm-up): it
  // changes nothing, bit for bit.
  std::vector<float> warmed(first.size());
  fast->reset();
  for (size_t k = 0; k < kChunks; ++k) {
    fast->warm();
    fast->step(d.chunks[k], std::span<float>(&warmed[k * 2], 2));
    if (k % 3 == 0) fast->warm();
    fast->prepare_next();
    if (k % 2 == 0) fast->warm();
  }
  EXPECT_EQ(first, warmed);
  // step_many on two threads (one encodes while the other runs the recurrence): bit for bit too,
  // for batches of every size, repeatedly (the claim order differs from run to run).
  auto two = make_fast_possm_decoder(model, meta, /*threads=*/2);
  EXPECT_NE(two->describe().find(" t2"), std::string::npos);
  two->set_parallel_invoke([](const std::function<void()>& a, const std::function<void()>& b) {
    std::thread other(a);  // really concurrent, whatever the machine's load
    b();
    other.join();
  });
  for (int rep = 0; rep < 5; ++rep) {
    std::vector<float> parallel(first.size());
    two->reset();
    size_t k = 0;
    for (size_t n : {size_t{1}, size_t{2}, size_t{17}, kChunks - 20}) {
      std::vector<const core::TokenChunk*> ptrs;
      for (size_t j = 0; j < n; ++j) ptrs.push_back(&d.chunks[k + j]);
      two->step_many(ptrs, std::span<float>(&parallel[k * 2], n * 2));
      two->prepare_next();
      k += n;
    }
    EXPECT_EQ(first, parallel);
  }
}

TEST(FastPossmTest, bad_chunks_throw_before_the_state_changes) {
  const auto d = test_stream();
  const PossmMeta meta = meta_for(d, PossmConfig{});
  torch::manual_seed(10);
  Possm model = make_possm(meta);
  auto fast = make_fast_possm_decoder(model, meta);
  const auto ref = run(*fast, d);
  fast->reset();
  core::TokenChunk bad = d.chunks[2];
  bad.unit.back() = kUnits;
  std::vector<float> out(2);
  EXPECT_THROW(fast->step(bad, out), std::out_of_range);
  bad.unit.back() = -1;
  EXPECT_THROW(fast->step(bad, out), std::out_of_range);
  bad.unit.pop_back();
  EXPECT_THROW(fast->step(bad, out), std::invalid_argument);
  const std::vector<const core::TokenChunk*> two = {&d.chunks[0], &bad};
  std::vector<float> out4(4);
  EXPECT_THROW(fast->step_many(two, out4), std::invalid_argument);
  EXPECT_THROW(fast->step(d.chunks[0], std::span<float>(out.data(), 1)), std::invalid_argument);
  std::vector<float> after(ref.size());
  for (size_t i = 0; i < d.size(); ++i) fast->step(d.chunks[i], std::span<float>(&after[i * 2], 2));
  EXPECT_EQ(ref, after);  // no state was touched by the rejected chunks
}

TEST(FastPossmTest, weights_are_validated) {
  const auto d = test_stream();
  const PossmMeta meta = meta_for(d, PossmConfig{});
  Possm model = make_possm(meta);
  FastPossmWeights w = export_fast_possm_weights(model, meta);
  w.score.pop_back();
  w.gru_hh.b.clear();
  try {
    FastPossmDecoder dec(w);
    FAIL() << "expected invalid_argument";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("score"), std::string::npos) << msg;
    EXPECT_NE(msg.find("gru_hh"), std::string::npos) << msg;
  }
}

TEST(FastPossmTest, load_decoder_honours_the_path) {
  const auto d = test_stream();
  const spikeflow::testing::TempDir dir("fast_possm");
  const auto path = dir.file("model.sfck");
  PossmConfig c;
  c.num_latents = 2;
  save_untrained_possm(path, c, d.units, 2, d.width_ns, /*seed=*/12);
  RuntimeOptions rt;
  rt.path = "torch";
  auto torch_dec = load_decoder(path, rt);
  rt.path = "fast";
  auto fast = load_decoder(path, rt);
  rt.path = "auto";
  auto auto_dec = load_decoder(path, rt);
  EXPECT_EQ(torch_dec->describe().rfind("possm-torch", 0), 0u) << torch_dec->describe();
  EXPECT_EQ(fast->describe().rfind("possm-fast", 0), 0u) << fast->describe();
  EXPECT_EQ(auto_dec->describe().rfind("possm-fast", 0), 0u) << auto_dec->describe();
  EXPECT_EQ(fast->units(), torch_dec->units());
  EXPECT_EQ(fast->chunk_width_ns(), torch_dec->chunk_width_ns());
  EXPECT_EQ(fast->output_dim(), torch_dec->output_dim());
  EXPECT_LE(max_abs_diff(run(*torch_dec, d), run(*fast, d)), 1e-4f);
  rt.path = "turbo";
  try {
    load_decoder(path, rt);
    FAIL() << "expected runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("turbo"), std::string::npos) << e.what();
  }
  rt.path = "fast";
  rt.device = "cuda";  // the fast path is CPU-only; this LibTorch has no CUDA either
  EXPECT_THROW(load_decoder(path, rt), std::runtime_error);
  PossmMeta meta;
  EXPECT_NE(fast_possm_unsupported(meta, rt).find("CPU"), std::string::npos);
  rt.device = "cpu";
  EXPECT_EQ(fast_possm_unsupported(meta, rt), "");
}

}  // namespace
}  // namespace spikeflow::models
