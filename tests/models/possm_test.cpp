// The POSSM modules: streaming step == batch forward, step_many == step, packed == padded,
// empty chunks, grouped-query attention, the S4D backbone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "models/possm_decoder.h"
#include "synthetic_dataset.h"

namespace spikeflow::models {
namespace {

using testing::make_synthetic;
using testing::SyntheticOptions;

PossmMeta small_meta(const core::DecodingDataset& d, PossmConfig config = {}) {
  PossmMeta m;
  m.config = config;
  m.units = d.units;
  m.output_dim = d.output_dim;
  m.width_ns = d.width_ns;
  m.target_mean.assign(static_cast<size_t>(d.output_dim), 0.f);
  m.target_std.assign(static_cast<size_t>(d.output_dim), 1.f);
  return m;
}

core::DecodingDataset sequence_with_empty_chunks(size_t n) {
  SyntheticOptions o;
  o.num_units = 24;
  o.num_chunks = n;
  auto d = make_synthetic(o);
  for (size_t i = 3; i < d.chunks.size(); i += 5) d.chunks[i].clear_tokens();
  return d;
}

float max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<float>();
}

/// Batch forward of one window (B = 1) before any inference cache exists: (C, output_dim).
torch::Tensor batch_forward(Possm& model, const core::DecodingDataset& d, bool packed) {
  torch::NoGradGuard g;
  Windows w(1);
  for (const auto& ch : d.chunks) w[0].push_back(&ch);
  torch::Tensor y =
      packed ? model->forward_packed(collate_packed(w)) : model->forward_padded(collate_padded(w));
  return y[0];
}

torch::Tensor stream(StreamingDecoder& dec, const core::DecodingDataset& d) {
  std::vector<float> out(d.size() * static_cast<size_t>(dec.output_dim()));
  dec.reset();
  for (size_t i = 0; i < d.size(); ++i) {
    dec.step(d.chunks[i], std::span<float>(out.data() + i * dec.output_dim(), dec.output_dim()));
  }
  return torch::from_blob(out.data(), {static_cast<int64_t>(d.size()), dec.output_dim()}).clone();
}

void expect_stream_equals_batch(const PossmConfig& config) {
  const auto d = sequence_with_empty_chunks(40);
  torch::manual_seed(3);
  const PossmMeta meta = small_meta(d, config);
  Possm model = make_possm(meta);
  model->eval();
  const torch::Tensor batch = batch_forward(model, d, /*packed=*/true);
  PossmDecoder dec(model, meta, RuntimeOptions{});
  const torch::Tensor streamed = stream(dec, d);
  EXPECT_TRUE(torch::isfinite(streamed).all().item<bool>());
  EXPECT_LE(max_abs_diff(batch, streamed), 1e-5f);
}

TEST(PossmTest, step_equals_batch_forward_gru) { expect_stream_equals_batch(PossmConfig{}); }

TEST(PossmTest, step_equals_batch_forward_s4d) {
  PossmConfig c;
  c.backbone = "s4d";
  c.rnn_hidden = 64;
  expect_stream_equals_batch(c);
}

TEST(PossmTest, step_equals_batch_forward_gqa_latents_self_attention) {
  PossmConfig c;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.num_latents = 2;
  c.self_attn_layers = 1;
  c.rnn_hidden = 32;
  expect_stream_equals_batch(c);
}

TEST(PossmTest, step_many_equals_repeated_step) {
  const auto d = sequence_with_empty_chunks(30);
  torch::manual_seed(4);
  const PossmMeta meta = small_meta(d);
  PossmDecoder dec(make_possm(meta), meta, RuntimeOptions{});
  const torch::Tensor one_by_one = stream(dec, d);
  // Same stream, in uneven catch-up batches: 1, 7, 2, then the rest.
  std::vector<float> out(d.size() * 2);
  dec.reset();
  size_t i = 0;
  for (size_t n : {size_t{1}, size_t{7}, size_t{2}, d.size() - 10}) {
    std::vector<const core::TokenChunk*> ptrs;
    for (size_t j = 0; j < n; ++j) ptrs.push_back(&d.chunks[i + j]);
    dec.step_many(ptrs, std::span<float>(out.data() + i * 2, n * 2));
    i += n;
  }
  const torch::Tensor batched = torch::from_blob(out.data(), {static_cast<int64_t>(d.size()), 2});
  EXPECT_LE(max_abs_diff(one_by_one, batched), 1e-5f);
}

TEST(PossmTest, packed_equals_padded_with_unit_dropout_and_gqa) {
  for (int kv_heads : {1, 2}) {
    PossmConfig c;
    c.num_heads = 2;
    c.num_kv_heads = kv_heads;
    c.num_latents = 2;
    const auto d = sequence_with_empty_chunks(60);
    torch::manual_seed(5);
    Possm model = make_possm(small_meta(d, c));
    // Three windows of different lengths (padding in C) and per-window dropped units.
    Windows w(3);
    for (size_t i = 0; i < 20; ++i) w[0].push_back(&d.chunks[i]);
    for (size_t i = 20; i < 31; ++i) w[1].push_back(&d.chunks[i]);
    for (size_t i = 31; i < 60; ++i) w[2].push_back(&d.chunks[i]);
    std::vector<std::vector<uint8_t>> keep(3, std::vector<uint8_t>(d.units.size(), 1));
    keep[1][0] = keep[1][5] = keep[2][7] = 0;
    torch::NoGradGuard g;
    const PackedBatch pb = collate_packed(w, &keep);
    const PaddedBatch pd = collate_padded(w, &keep);
    EXPECT_TRUE(pb.chunk_mask.equal(pd.chunk_mask));
    EXPECT_EQ(pb.unit.size(0), pd.token_mask.sum().item<int64_t>());
    const torch::Tensor a = model->forward_packed(pb), b = model->forward_padded(pd);
    ASSERT_EQ(a.sizes(), b.sizes());
    EXPECT_LE(max_abs_diff(a, b), 1e-5f) << "kv_heads " << kv_heads;
  }
}

TEST(PossmTest, empty_chunks_give_finite_output_and_gradients) {
  SyntheticOptions o;
  o.num_units = 8;
  o.num_chunks = 12;
  auto d = make_synthetic(o);
  for (auto& ch : d.chunks) ch.clear_tokens();  // an all-empty sequence
  torch::manual_seed(6);
  const PossmMeta meta = small_meta(d);
  Possm model = make_possm(meta);
  Windows w(1);
  for (const auto& ch : d.chunks) w[0].push_back(&ch);
  torch::Tensor y = model->forward_packed(collate_packed(w));
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  y.square().sum().backward();
  for (const auto& p : model->parameters()) {
    if (p.grad().defined()) {
      EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
    }
  }
  {
    torch::NoGradGuard g;
    EXPECT_TRUE(torch::isfinite(model->forward_padded(collate_padded(w))).all().item<bool>());
    EXPECT_LE(max_abs_diff(model->forward_padded(collate_padded(w)), y.detach()), 1e-6f);
  }
  PossmDecoder dec(model, meta, RuntimeOptions{});
  const torch::Tensor s = stream(dec, d);
  EXPECT_TRUE(torch::isfinite(s).all().item<bool>());
  // A single empty chunk in the middle of a busy stream also stays finite.
  auto busy = sequence_with_empty_chunks(10);
  std::vector<float> out(2);
  dec.reset();
  for (const auto& ch : busy.chunks) {
    core::TokenChunk c = ch;
    std::transform(c.unit.begin(), c.unit.end(), c.unit.begin(), [](int32_t u) { return u % 8; });
    dec.step(c, out);
    EXPECT_TRUE(std::isfinite(out[0]) && std::isfinite(out[1]));
  }
}

TEST(PossmTest, grouped_query_attention_shapes) {
  PossmConfig c;
  c.dim = 64;
  c.num_heads = 4;
  c.num_kv_heads = 2;
  c.num_latents = 3;
  Possm model(PossmOptions(10, 2).config(c));
  auto [k, v] = model->cross->kv_table(model->unit_emb->weight);
  EXPECT_EQ(k.sizes(), (std::vector<int64_t>{10, 2, 16}));
  EXPECT_EQ(v.sizes(), (std::vector<int64_t>{10, 2, 16}));
  EXPECT_EQ(model->cross->to_q->weight.sizes(), (std::vector<int64_t>{64, 64}));
  EXPECT_EQ(model->cross->to_k->weight.sizes(), (std::vector<int64_t>{32, 64}));
  torch::NoGradGuard g;
  torch::Tensor unit = torch::tensor({1, 2, 3, 9}, torch::kLong);
  torch::Tensor off = torch::tensor({0.01f, 0.02f, 0.03f, 0.049f});
  EXPECT_EQ(model->encode_one(unit, off).sizes(), (std::vector<int64_t>{1, 3 * 64}));
  EXPECT_EQ(model->encode_packed(unit, off, torch::tensor({0, 0, 2, 2}, torch::kLong), 3).sizes(),
            (std::vector<int64_t>{3, 3 * 64}));
}

TEST(PossmTest, rotary_attention_depends_on_relative_time_only) {
  // Scores and values are built from rotations by token time and latent time; shifting every
  // token by the same Δ is not the same model output (latent time is fixed), but a token at the
  // latent's own time contributes an unrotated value.
  RotaryTimeEmbedding rope(RotaryTimeEmbeddingOptions(16));
  torch::Tensor x = torch::randn({5, 16});
  auto [c1, s1] = rope->forward(torch::full({5}, 0.3f));
  auto [c2, s2] = rope->forward(torch::full({5}, 0.3f));
  torch::Tensor back =
      RotaryTimeEmbeddingImpl::rotate(RotaryTimeEmbeddingImpl::rotate(x, c1, s1), c2, -s2);
  EXPECT_LE(max_abs_diff(back, x), 1e-5f);
  // Half of the dims are rotated, the rest pass through.
  torch::Tensor r = RotaryTimeEmbeddingImpl::rotate(x, c1, s1);
  EXPECT_TRUE(r.narrow(1, 8, 8).equal(x.narrow(1, 8, 8)));
  EXPECT_EQ(rope->omega.size(0), 4);
  EXPECT_NEAR(rope->omega[0].item<double>(), 2 * M_PI / 1e-4, 1.0);
  EXPECT_NEAR(rope->omega[3].item<double>(), 2 * M_PI / 10.0, 1e-4);
}

TEST(PossmTest, invalid_config_lists_every_problem) {
  PossmConfig c;
  c.dim = 30;
  c.num_kv_heads = 3;
  c.backbone = "lstm";
  try {
    validate_possm_config(c);
    FAIL() << "expected invalid_argument";
  } catch (const std::invalid_argument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("num_kv_heads"), std::string::npos) << msg;
    EXPECT_NE(msg.find("multiple of 4"), std::string::npos) << msg;
    EXPECT_NE(msg.find("backbone"), std::string::npos) << msg;
  }
}

}  // namespace
}  // namespace spikeflow::models
