#include "models/distributed.h"

#include <cstdlib>
#include <stdexcept>

#include "models/grad_sync.h"

#if SPIKEFLOW_HAVE_C10D_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
// NCCL: compiled only where LibTorch has CUDA and NCCL (models/CMakeLists.txt defines
// USE_C10D_NCCL then, the macro LibTorch's own header is guarded by). Not exercised by any test:
// no build here has a CUDA LibTorch.
#if SPIKEFLOW_HAVE_C10D_GLOO && defined(USE_C10D_NCCL)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace spikeflow::models {

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < 0 || x > 1000000)
    throw std::invalid_argument(std::string("environment variable ") + name + "='" + v +
                                "' is not a valid number");
  return static_cast<int>(x);
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

DistOptions dist_options_from_env(DistOptions o) {
  o.world_size = env_int("WORLD_SIZE", o.world_size);
  o.rank = env_int("RANK", o.rank);
  o.master_port = env_int("MASTER_PORT", o.master_port);
  if (const char* a = std::getenv("MASTER_ADDR"); a != nullptr && *a != '\0') o.master_addr = a;
  return o;
}

bool nccl_available() {
#if SPIKEFLOW_HAVE_C10D_GLOO && defined(USE_C10D_NCCL)
  return true;
#else
  return false;
#endif
}

void validate_dist_options(const DistOptions& o) {
  std::string bad;
  if (o.world_size < 1) bad += "; world size must be >= 1";
  if (o.rank < 0 || o.rank >= o.world_size) bad += "; rank must be in [0, world size)";
  if (o.master_port < 1 || o.master_port > 65535) bad += "; master port must be in [1, 65535]";
  if (o.master_addr.empty()) bad += "; master address is empty";
  if (!(o.timeout_s > 0)) bad += "; timeout must be > 0";
  if (o.backend != "gloo" && o.backend != "nccl") bad += "; backend must be gloo or nccl";
#ifndef USE_C10D_NCCL
  if (o.backend == "nccl")
    bad += "; backend 'nccl' needs a CUDA LibTorch with NCCL; this build has none (use gloo)";
#endif
  if (!bad.empty()) throw std::invalid_argument("data-parallel options" + bad.replace(0, 1, ":"));
}

#if SPIKEFLOW_HAVE_C10D_GLOO

bool c10d_available() { return true; }

struct GradientSync::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroup> group;
  /// Where collectives run: the CPU (Gloo), or this rank's GPU (NCCL), where each bucket is
  /// copied to and back from (the model trains on the CPU).
  torch::Device device{torch::kCPU};

  at::Tensor to_device(const at::Tensor& t) const {
    return device.is_cpu() ? t : t.to(device, /*non_blocking=*/false, /*copy=*/true);
  }
};

GradientSync::GradientSync(const DistOptions& options)
    : options_(options), impl_(std::make_unique<Impl>()) {
  validate_dist_options(options_);
  const bool nccl = options_.backend == "nccl";
#ifndef USE_C10D_NCCL
  if (nccl) {
    throw std::runtime_error(
        "data-parallel: backend 'nccl' needs a CUDA LibTorch with NCCL; this build has "
        "none (use --backend gloo)");
  }
#else
  if (nccl) {
    const auto gpus = static_cast<int>(torch::cuda::device_count());
    if (gpus < 1)
      throw std::runtime_error("data-parallel rank " + std::to_string(options_.rank) +
                               ": backend 'nccl' but no CUDA device is visible (use --backend gloo)");
    // One GPU per local rank, round robin (set CUDA_VISIBLE_DEVICES to choose them).
    impl_->device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(options_.rank % gpus));
    // Without blocking wait NCCL never times out a collective on a dead rank: it would hang.
    ::setenv("NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0);
  }
#endif
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(options_.timeout_s * 1000));
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(options_.master_port);
    so.isServer = options_.rank == 0;
    so.numWorkers = static_cast<std::size_t>(options_.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(options_.master_addr, so);
#ifdef USE_C10D_NCCL
    if (nccl) {
      auto no = c10d::ProcessGroupNCCL::Options::create();
      no->timeout = timeout;
      impl_->group = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl_->store, options_.rank,
                                                                 options_.world_size, no);
      return;
    }
#endif
    auto go = c10d::ProcessGroupGloo::Options::create(timeout);
    go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(
        options_.master_addr == "localhost" ? "127.0.0.1" : options_.master_addr));
    go->threads = 1;
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, options_.rank,
                                                               options_.world_size, go);
  } catch (const std::exception& e) {
    throw std::runtime_error("data-parallel rank " + std::to_string(options_.rank) +
                             ": cannot join " + options_.master_addr + ":" +
                             std::to_string(options_.master_port) + " (world size " +
                             std::to_string(options_.world_size) + "): " + first_line(e.what()));
  }
}

GradientSync::~GradientSync() = default;

void GradientSync::fail(const std::string& what, const std::exception& e) const {
  throw std::runtime_error(
      "data-parallel rank " + std::to_string(options_.rank) + ": " + what +
      " failed; another rank stopped or the network failed: " + first_line(e.what()));
}

void GradientSync::broadcast(const std::vector<torch::Tensor>& tensors) {
  torch::NoGradGuard g;
  try {
    for (const auto& t : tensors) {
      std::vector<at::Tensor> one{impl_->to_device(t.detach())};
      c10d::BroadcastOptions bo;
      bo.rootRank = 0;
      impl_->group->broadcast(one, bo)->wait();
      if (!impl_->device.is_cpu()) t.detach().copy_(one[0]);
    }
  } catch (const std::exception& e) {
    fail("broadcast of the initial weights", e);
  }
}

void GradientSync::allreduce_gradients(const std::vector<torch::Tensor>& params,
                                       torch::Tensor& extra, int64_t bucket_elems) {
  torch::NoGradGuard g;
  // Buckets of consecutive parameters, flattened into one contiguous tensor each.
  std::vector<torch::Tensor> grads;
  grads.reserve(params.size() + 1);
  for (const auto& p : params) {
    if (!p.requires_grad()) continue;
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  grads.push_back(extra);
  try {
    size_t i = 0;
    while (i < grads.size()) {
      size_t j = i;
      int64_t n = 0;
      while (j < grads.size() && (j == i || n + grads[j].numel() <= bucket_elems))
        n += grads[j++].numel();
      std::vector<torch::Tensor> flat_parts;
      for (size_t k = i; k < j; ++k) flat_parts.push_back(grads[k].reshape({-1}));
      std::vector<at::Tensor> bucket{impl_->to_device(torch::cat(flat_parts))};
      impl_->group->allreduce(bucket)->wait();
      const at::Tensor summed = bucket[0].to(torch::kCPU);
      int64_t off = 0;
      for (size_t k = i; k < j; ++k) {
        const int64_t m = grads[k].numel();
        grads[k].copy_(summed.narrow(0, off, m).view(grads[k].sizes()));
        off += m;
      }
      i = j;
    }
  } catch (const std::exception& e) {
    fail("gradient all-reduce", e);
  }
}

#else  // no c10d Gloo headers in this build

bool c10d_available() { return false; }

struct GradientSync::Impl {};

GradientSync::GradientSync(const DistOptions& options) : options_(options) {
  throw std::runtime_error(
      "data-parallel training: this build has no c10d Gloo (LibTorch's c10d headers and "
      "libgloo-dev are "
      "needed at build time)");
}
GradientSync::~GradientSync() = default;
void GradientSync::fail(const std::string& what, const std::exception& e) const {
  throw std::runtime_error(what + ": " + e.what());
}
void GradientSync::broadcast(const std::vector<torch::Tensor>&) {}
void GradientSync::allreduce_gradients(const std::vector<torch::Tensor>&, torch::Tensor&, int64_t) {
}

#endif

}  // namespace spikeflow::models
