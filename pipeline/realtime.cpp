#include "pipeline/realtime.h"

#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <tbb/task_scheduler_observer.h>

namespace spikeflow::pipeline {

namespace {

constexpr const char* kFifoKey = "realtime.sched_fifo_priority";
constexpr const char* kMlockKey = "realtime.mlockall";
constexpr int kCapIpcLock = 14;  // linux/capability.h

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t"), e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

/// A field of /proc/self/status ("CapEff", "VmSize"), or empty.
std::string proc_status(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return trim(line.substr(field.size() + 1));
  }
  return {};
}

bool has_capability(int cap) {
  const std::string eff = proc_status("CapEff");
  if (eff.empty()) return false;
  uint64_t bits = 0;
  const auto [end, ec] = std::from_chars(eff.data(), eff.data() + eff.size(), bits, 16);
  return ec == std::errc() && ((bits >> cap) & 1u) != 0;
}

std::string fifo_error(int err, int priority) {
  std::string why = std::strerror(err);
  if (err == EPERM)
    why += fmt::format(" (needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least {}: ulimit -r)",
                       priority);
  return fmt::format("{}: SCHED_FIFO priority {}: {}", kFifoKey, priority, why);
}

std::string affinity_check(const std::string& key, const std::string& text,
                           const std::vector<int>& allowed) {
  std::string why;
  const auto cpus = parse_cpu_list(text, &why);
  if (!cpus) return fmt::format("{}: '{}': {}", key, text, why);
  for (int c : *cpus) {
    if (!std::binary_search(allowed.begin(), allowed.end(), c)) {
      return fmt::format("{}: CPU {} is not in this process's allowed set ({})", key, c,
                         cpu_list_text(allowed));
    }
  }
  return {};
}

const std::string& affinity_text(const RealtimeConfig& c, ThreadRole role) {
  switch (role) {
    case ThreadRole::kIngest:
      return c.affinity_ingest;
    case ThreadRole::kTicker:
      return c.affinity_ticker;
    case ThreadRole::kDecoder:
      return c.affinity_decoder;
    case ThreadRole::kGraph:
      return c.affinity_graph;
  }
  return c.affinity_graph;
}

std::atomic<uint64_t> next_observer_id{1};

}  // namespace


std::vector<int> allowed_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return out;
  for (int c = 0; c < CPU_SETSIZE; ++c) {
    if (CPU_ISSET(c, &set)) out.push_back(c);
  }
  return out;
}

const char* affinity_key(ThreadRole role) {
  switch (role) {
    case ThreadRole::kIngest:
      return "realtime.affinity.ingest";
    case ThreadRole::kTicker:
      return "realtime.affinity.ticker";
    case ThreadRole::kDecoder:
      return "realtime.affinity.decoder";
    case ThreadRole::kGraph:
      return "realtime.affinity.graph";
  }
  return "realtime.affinity";
}

std::vector<std::string> check_realtime(const RealtimeConfig& config) {
  std::vector<std::string> errors;
  const auto allowed = allowed_cpus();
  for (const auto& [key, text] : {std::pair<std::string, const std::string&>{
                                      affinity_key(ThreadRole::kIngest), config.affinity_ingest},
                                  {affinity_key(ThreadRole::kTicker), config.affinity_ticker},
                                  {affinity_key(ThreadRole::kDecoder), config.affinity_decoder},
                                  {affinity_key(ThreadRole::kGraph), config.affinity_graph},
                                  {"realtime.affinity.zmq_io", config.affinity_zmq_io}}) {
    if (auto why = affinity_check(key, text, allowed); !why.empty()) errors.push_back(why);
  }
  if (config.sched_fifo_priority < 0 || config.sched_fifo_priority > 99) {
    errors.push_back(fmt::format("{}: {} is outside [0, 99]", kFifoKey, config.sched_fifo_priority));
  } else if (config.sched_fifo_priority > 0) {
    // Probed on a thread of its own that exits right after: nothing else changes policy.
    std::string why;
    std::thread probe([&] {
      try {
        set_thread_fifo(pthread_self(), config.sched_fifo_priority);
      } catch (const RealtimeError& e) {
        why = e.what();
      }
    });
    probe.join();
    if (!why.empty()) errors.push_back(why);
  }
  if (config.mlockall && !has_capability(kCapIpcLock)) {
    // mlockall(MCL_CURRENT) needs the whole address space (VmSize) under RLIMIT_MEMLOCK.
    rlimit lim{};
    getrlimit(RLIMIT_MEMLOCK, &lim);
    const std::string vm = proc_status("VmSize");  // "123456 kB"
    uint64_t vm_kib = 0;
    std::from_chars(vm.data(), vm.data() + vm.size(), vm_kib);
    if (lim.rlim_cur != RLIM_INFINITY && (lim.rlim_cur == 0 || vm_kib * 1024 > lim.rlim_cur)) {
      errors.push_back(fmt::format(
          "{}: RLIMIT_MEMLOCK is {} KiB but the process maps {} KiB already (needs CAP_IPC_LOCK "
          "or ulimit -l unlimited)",
          kMlockKey, lim.rlim_cur / 1024, vm_kib));
    }
  }
  return errors;
}

void set_thread_affinity(pthread_t thread, const std::vector<int>& cpus, const std::string& key) {
  if (cpus.empty()) return;
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  if (const int rc = pthread_setaffinity_np(thread, sizeof(set), &set); rc != 0) {
    throw RealtimeError(fmt::format("{}: pthread_setaffinity_np({}): {}", key,
                                    cpu_list_text(cpus), std::strerror(rc)));
  }
}

void set_thread_fifo(pthread_t thread, int priority) {
  if (priority == 0) return;
  sched_param param{};
  param.sched_priority = priority;
  if (const int rc = pthread_setschedparam(thread, SCHED_FIFO, &param); rc != 0)
    throw RealtimeError(fifo_error(rc, priority));
}

void apply_thread_role(const RealtimeConfig& config, ThreadRole role) {
  std::string why;
  const auto cpus = parse_cpu_list(affinity_text(config, role), &why);
  if (!cpus) throw RealtimeError(fmt::format("{}: {}", affinity_key(role), why));
  set_thread_affinity(pthread_self(), *cpus, affinity_key(role));
  set_thread_fifo(pthread_self(), config.sched_fifo_priority);
}

void lock_process_memory(int flags) {
  if (mlockall(flags) == 0) return;
  const int err = errno;
  std::string why = std::strerror(err);
  if (err == EPERM) why += " (needs CAP_IPC_LOCK or a non-zero RLIMIT_MEMLOCK)";
  if (err == ENOMEM)
    why += " (the process maps more than RLIMIT_MEMLOCK allows: needs CAP_IPC_LOCK or ulimit -l "
           "unlimited)";
  throw RealtimeError(fmt::format("{}: mlockall: {}", kMlockKey, why));
}

struct ArenaRealtimeObserver::Impl final : tbb::task_scheduler_observer {
  Impl(tbb::task_arena& arena, const RealtimeConfig& c)
      : tbb::task_scheduler_observer(arena), config(c), id(next_observer_id.fetch_add(1)) {}

  void on_scheduler_entry(bool is_worker) override {
    if (!is_worker) return;  // a thread calling arena.execute() (stop(), tests) is not ours to pin
    thread_local uint64_t applied_for = 0;
    if (applied_for == id) return;
    applied_for = id;
    try {
      apply_thread_role(config, ThreadRole::kGraph);
      applied_count.fetch_add(1);
    } catch (const RealtimeError& e) {
      failure_count.fetch_add(1);
      spdlog::error("pipeline: a graph worker runs without its realtime settings: {}", e.what());
    }
  }

  const RealtimeConfig config;
  const uint64_t id;
  std::atomic<uint64_t> applied_count{0}, failure_count{0};
};

ArenaRealtimeObserver::ArenaRealtimeObserver(tbb::task_arena& arena, const RealtimeConfig& config)
    : impl_(std::make_unique<Impl>(arena, config)) {
  impl_->observe(true);
}

ArenaRealtimeObserver::~ArenaRealtimeObserver() { impl_->observe(false); }

uint64_t ArenaRealtimeObserver::applied() const { return impl_->applied_count.load(); }
uint64_t ArenaRealtimeObserver::failures() const { return impl_->failure_count.load(); }

}  // namespace spikeflow::pipeline
