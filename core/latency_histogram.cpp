#include "core/latency_histogram.h"

#include <algorithm>
#include <bit>
#include <cstdio>

namespace spikeflow::core {

// Bucket layout: values below kSub map to themselves (exponent 0). A larger value with highest
// bit h goes to exponent e = h - kSubBits + 1 and sub-bucket v >> e, which lies in
// [kSub/2, kSub): each power of two is split into kSub/2 equal parts (at most 1/64 relative
// error). Values past exponent kMaxExp share the last bucket, whose only honest edge is max().
size_t LatencyHistogram::bucket_of(int64_t v) {
  if (v < 0) v = 0;
  const auto u = static_cast<uint64_t>(v);
  if (u < static_cast<uint64_t>(kSub)) return static_cast<size_t>(u);
  const int h = 63 - std::countl_zero(u);  // >= kSubBits
  const int shift = h - kSubBits + 1;      // >= 1
  int e = shift;
  if (e > kMaxExp) return static_cast<size_t>((kMaxExp + 1) * kSub - 1);
  const uint64_t sub = u >> shift;  // in [kSub/2, kSub)
  return static_cast<size_t>(e * kSub + static_cast<int>(sub));
}

int64_t LatencyHistogram::upper_edge(size_t bucket) {
  const int e = static_cast<int>(bucket / kSub);
  const uint64_t sub = bucket % kSub;
  if (e == 0) return static_cast<int64_t>(sub);
  return static_cast<int64_t>(((sub + 1) << e) - 1);
}

void LatencyHistogram::record(int64_t value_ns) {
  ++counts_[bucket_of(value_ns)];
  ++count_;
  min_ = std::min(min_, value_ns);
  max_ = std::max(max_, value_ns);
  sum_ += value_ns;
}

void LatencyHistogram::merge(const LatencyHistogram& o) {
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
  count_ += o.count_;
  min_ = std::min(min_, o.min_);
  max_ = std::max(max_, o.max_);
  sum_ += o.sum_;
}

int64_t LatencyHistogram::percentile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const auto rank = static_cast<uint64_t>(q * static_cast<double>(count_ - 1)) + 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) return i + 1 == counts_.size() ? max_ : std::min(upper_edge(i), max_);
  }
  return max_;
}

std::string LatencyHistogram::summary_us() const {
  char buf[192];
  std::snprintf(buf, sizeof buf, "n=%llu p50=%.1fus p90=%.1fus p99=%.1fus p99.9=%.1fus max=%.1fus",
                static_cast<unsigned long long>(count_), percentile(0.5) / 1e3,
                percentile(0.9) / 1e3, percentile(0.99) / 1e3, percentile(0.999) / 1e3,
                static_cast<double>(max()) / 1e3);
  return buf;
}

}  // namespace spikeflow::core
