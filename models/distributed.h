// Data-parallel training over LibTorch's c10d (TCPStore rendezvous + ProcessGroupGloo) —
// torch-free header; the implementation (models/distributed.cpp, part of
// spikeflow::models_torch) is the only place that includes c10d.
//
// Scheme (pretrain_possm with world_size > 1): every rank draws the same window order and the
// same unit-dropout masks from the shared seed, takes windows rank, rank + N, ... of each global
// batch, and divides its squared error by the global batch's target count, so the bucketed
// all-reduce (sum) of the gradients is the one-rank gradient; rank 0's initial weights are
// broadcast. Every rank then takes the same optimizer step. Every rank validates (same weights,
// same decision to stop); rank 0 alone writes checkpoints, the resume state and the progress bar.
// A rank that dies makes the others' next collective fail (peer connection closed, or the
// timeout), which ends them with a one-line error naming the rank.
#pragma once

#include <string>

namespace spikeflow::models {

struct DistOptions {
  int world_size = 1;  ///< 1: no process group
  int rank = 0;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  double timeout_s = 60;         ///< rendezvous and each collective; bounds a wait on a dead rank
  /// "gloo" (CPU); "nccl": buckets all-reduced on this rank's GPU (rank % visible GPUs), built
  /// only against a CUDA LibTorch with NCCL (USE_C10D_NCCL; untested), refused otherwise.
  std::string backend = "gloo";
};

/// Fills world_size, rank, master_addr and master_port from WORLD_SIZE, RANK, MASTER_ADDR and
/// MASTER_PORT when those are set (torchrun's names). Throws std::invalid_argument on a bad value.
DistOptions dist_options_from_env(DistOptions base);

/// Throws std::invalid_argument listing on one line what is wrong (rank outside [0, world), bad
/// port, backend nccl in a build without it...).
void validate_dist_options(const DistOptions& o);

/// Whether this build has c10d with Gloo (LibTorch's c10d headers and libgloo-dev's headers).
bool c10d_available();

/// Whether this build has c10d NCCL (a CUDA LibTorch with NCCL; --backend nccl). Untested path.
bool nccl_available();

}  // namespace spikeflow::models
