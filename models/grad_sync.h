// GradientSync: the c10d process group behind data-parallel training (models/distributed.h).
// Internal to models/ (includes torch).
#pragma once

#include <torch/torch.h>

#include <memory>
#include <vector>

#include "models/distributed.h"

namespace spikeflow::models {

class GradientSync {
 public:
  /// Rendezvous on master_addr:master_port (rank 0 hosts the TCPStore) and creates the Gloo
  /// process group. Throws std::runtime_error naming the rank and the master on failure.
  explicit GradientSync(const DistOptions& options);
  ~GradientSync();
  GradientSync(const GradientSync&) = delete;
  GradientSync& operator=(const GradientSync&) = delete;

  /// Rank 0's values into every rank's tensors (in place).
  void broadcast(const std::vector<torch::Tensor>& tensors);
  /// Sums the gradients of params (an undefined gradient counts as zeros) and extra (in place)
  /// over all ranks, in flat buckets of at most bucket_elems floats.
  void allreduce_gradients(const std::vector<torch::Tensor>& params, torch::Tensor& extra,
                           int64_t bucket_elems = 1 << 20);

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }

 private:
  [[noreturn]] void fail(const std::string& what, const std::exception& e) const;
  DistOptions options_;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spikeflow::models
