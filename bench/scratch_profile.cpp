#include <chrono>
#include <cstdio>
#include <fstream>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <dlfcn.h>
#include "models/possm_decoder.h"
#include "../tests/models/synthetic_dataset.h"
using namespace spikeflow;
using namespace spikeflow::models;
using Clock = std::chrono::steady_clock;
int main(int argc, char** argv) {
  set_torch_threads(getenv("T") ? atoi(getenv("T")) : 2);
  if (auto f = reinterpret_cast<void(*)(int)>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) { f(1); std::printf("openblas 1 thread\n"); }
  testing::SyntheticOptions so; so.num_units = 96; so.num_chunks = 800;
  auto d = testing::make_synthetic(so);
  PossmMeta meta; meta.units = d.units; meta.output_dim = 2; meta.target_mean = {0,0}; meta.target_std={1,1};
  if (argc > 1) meta.config.backbone = argv[1];
  Possm model = make_possm(meta);
  Windows w;
  for (int b = 0; b < 32; ++b) { std::vector<const core::TokenChunk*> c; for (int i = 0; i < 20; ++i) c.push_back(&d.chunks[b*20+i]); w.push_back(c); }
  auto pb = collate_packed(w);
  std::printf("tokens %ld\n", pb.unit.size(0));
  auto time = [](const char* what, auto f) { for (int r = 0; r < 3; ++r) { auto t0 = Clock::now(); f(); if (r==2) std::printf("%s %.2f ms\n", what, std::chrono::duration<double, std::milli>(Clock::now()-t0).count()); } };
  time("collate", [&]{ collate_packed(w); });
  time("encode fwd", [&]{ model->encode_packed(pb.unit, pb.offset, pb.segment, 640); });
  time("encode fwd+bwd", [&]{ model->encode_packed(pb.unit, pb.offset, pb.segment, 640).sum().backward(); });
  auto feat = torch::randn({32, 20, 64}, torch::requires_grad());
  time("decode fwd", [&]{ model->decode(feat, model->initial_state(32)); });
  time("decode fwd+bwd", [&]{ model->decode(feat, model->initial_state(32)).first.sum().backward(); });
  time("full fwd+bwd", [&]{ model->forward_packed(pb).sum().backward(); });
  { std::ofstream f("/tmp/trace.json"); torch::autograd::profiler::RecordProfile g(f); model->forward_packed(pb).sum().backward(); }
  auto pd = collate_padded(w);
  time("padded fwd+bwd", [&]{ model->forward_padded(pd).sum().backward(); });
}
