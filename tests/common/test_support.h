// Helpers every test binary shares: a temporary directory removed on destruction, waiting on a
// condition with a deadline (never sleep-and-hope, never spin on yield()), and a real ZeroMQ
// subscriber of the publisher's prediction topic.
// Header-only; include as "tests/common/test_support.h". Link spikeflow::stages and cppzmq for
// ZmqSubscriber (tests/common's CMake target spikeflow_test_support does).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace spikeflow::testing {

/// A localhost TCP port that was free a moment ago (bound to port 0, then released): for servers
/// a test starts by port number (c10d's TCPStore).
inline int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// A fresh directory under the system temp dir, unique per process and instance, removed with
/// its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "test") {
    static std::atomic<int> counter{0};
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = std::filesystem::temp_directory_path() /
            ("spikeflow_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(stamp) +
             "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  /// Path of `name` inside the directory (not created).
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// Polls `predicate` until it holds or `timeout` passes; returns its last value. The poll period
/// grows from 100 µs to 5 ms, so a quick condition is seen quickly and a slow one costs no CPU
/// (the suite must pass on a machine whose cores are all busy). For state owned by another
/// thread that has no condition variable to wait on (counters behind stats()).
inline bool wait_until(const std::function<bool()>& predicate,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto period = std::chrono::microseconds(100);
  while (true) {
    if (predicate()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return predicate();
    std::this_thread::sleep_for(period);
    period = std::min<std::chrono::microseconds>(period * 2, std::chrono::milliseconds(5));
  }
}

/// A flag one thread sets and another waits for, with a deadline.
class Latch {
 public:
  void set() {
    {
      std::lock_guard lock(mutex_);
      set_ = true;
    }
    cv_.notify_all();
  }
  bool wait_for(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [this] { return set_; });
  }
  bool is_set() const {
    std::lock_guard lock(mutex_);
    return set_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool set_ = false;
};

}  // namespace spikeflow::testing
