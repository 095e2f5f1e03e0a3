// LatencyHistogram: HDR-style log-linear histogram of non-negative durations (ns) with 1/64
// (~1.6%) relative precision, O(1) record and no allocation after construction. Used by the
// pipeline's metrics, `spikeflow listen` and the benchmarks. Not thread-safe: one writer; copy to
// read.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace spikeflow::core {

class LatencyHistogram {
 public:
  static constexpr int kSubBits = 7;  ///< 128 sub-buckets per power of two
  static constexpr int kSub = 1 << kSubBits;
  static constexpr int kMaxExp = 44;  ///< up to ~2^51 ns (26 days)

  void record(int64_t value_ns);
  void merge(const LatencyHistogram& other);
  void clear() { *this = LatencyHistogram(); }

  uint64_t count() const { return count_; }
  int64_t min() const { return count_ ? min_ : 0; }
  int64_t max() const { return max_; }
  double mean() const {
    return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0;
  }
  /// Value at quantile q in [0, 1] (upper edge of its bucket, capped at max(); max() for the
  /// overflow bucket past 2^51 ns); 0 when empty.
  int64_t percentile(double q) const;

  /// "n=…  p50=…us p90=… p99=… p99.9=… max=…" in microseconds.
  std::string summary_us() const;

 private:
  static size_t bucket_of(int64_t v);
  static int64_t upper_edge(size_t bucket);

  std::array<uint64_t, static_cast<size_t>((kMaxExp + 1) * kSub)> counts_{};
  uint64_t count_ = 0;
  int64_t min_ = INT64_MAX;
  int64_t max_ = 0;
  int64_t sum_ = 0;
};

}  // namespace spikeflow::core
