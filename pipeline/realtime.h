// Real-time knobs of the live pipeline (config keys realtime.*, README "Real-time tuning"): CPU
// affinity per thread role, SCHED_FIFO for the latency-critical threads, mlockall of the process.
// Everything here is off by default. A knob that was asked for and cannot be applied is an
// error, never a silent downgrade: preflight (check_realtime) names the key and the reason before
// any thread starts, and the functions that apply a knob throw RealtimeError with the same kind
// of one-line message ("realtime.sched_fifo_priority: SCHED_FIFO priority 50: Operation not
// permitted (needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least 50)").
//
// Who applies what (pipeline/live_pipeline.cpp):
//   ingest thread   realtime.affinity.ingest, SCHED_FIFO   (on the thread, before its first read)
//   ticker thread   realtime.affinity.ticker, SCHED_FIFO   (likewise)
//   decoder thread  realtime.affinity.decoder, SCHED_FIFO  (likewise; pipeline/decoder_thread.h)
//   graph workers   realtime.affinity.graph,  SCHED_FIFO   (ArenaRealtimeObserver: each TBB worker
//                                                            the first time it enters the arena)
//   ZeroMQ I/O      realtime.affinity.zmq_io, SCHED_FIFO   (context options, before any socket)
//   process         realtime.mlockall                       (MCL_CURRENT | MCL_FUTURE)
// Setup only; every function may be called from any thread.
#pragma once

#include <pthread.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <tbb/task_arena.h>

#include "pipeline/cpu_list.h"
#include "pipeline/pipeline_config.h"

namespace spikeflow::pipeline {

/// A knob asked for and not applicable; what() is one line naming the key.
class RealtimeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thread roles that take an affinity and SCHED_FIFO.
enum class ThreadRole { kIngest, kTicker, kDecoder, kGraph };

/// The CPUs this process may run on (sched_getaffinity), sorted.
std::vector<int> allowed_cpus();

/// The config key holding the CPU list of a role ("realtime.affinity.ingest", ...).
const char* affinity_key(ThreadRole role);

/// Every realtime problem of the config on this machine, one line each naming its key: a CPU
/// outside the allowed set, SCHED_FIFO not permitted (probed on a short-lived thread), mlockall
/// not possible (neither CAP_IPC_LOCK nor an unlimited RLIMIT_MEMLOCK). Empty when all is well.
std::vector<std::string> check_realtime(const RealtimeConfig& config);

/// Pins thread to cpus (empty: does nothing). Throws RealtimeError naming key.
void set_thread_affinity(pthread_t thread, const std::vector<int>& cpus, const std::string& key);

/// SCHED_FIFO at priority (1..99) for thread; 0 does nothing. Throws RealtimeError naming
/// realtime.sched_fifo_priority and the privilege it needs.
void set_thread_fifo(pthread_t thread, int priority);

/// The role's affinity and SCHED_FIFO for the calling thread. Throws RealtimeError.
void apply_thread_role(const RealtimeConfig& config, ThreadRole role);

/// mlockall(flags): realtime.mlockall. Throws RealtimeError naming the key, the errno text and
/// the limit it needs.
void lock_process_memory(int flags);

/// The realtime settings the TBB workers of one arena take (realtime.affinity.graph, SCHED_FIFO),
/// applied by each worker thread on itself the first time it enters the arena (once per thread:
/// a syscall on every entry would sit on the wake-up path). A worker keeps them when it later
/// serves another arena of the process. A failure cannot be thrown from a worker: it is logged
/// (once per thread) and counted (failures()). Observes from construction; destroy it before
/// the arena.
class ArenaRealtimeObserver {
 public:
  ArenaRealtimeObserver(tbb::task_arena& arena, const RealtimeConfig& config);
  ~ArenaRealtimeObserver();
  ArenaRealtimeObserver(const ArenaRealtimeObserver&) = delete;
  ArenaRealtimeObserver& operator=(const ArenaRealtimeObserver&) = delete;
  /// Worker threads that entered the arena and took (applied()) or failed to take the settings.
  uint64_t applied() const;
  uint64_t failures() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace spikeflow::pipeline
