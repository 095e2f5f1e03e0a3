// LatencyHistogram on known data: exact below 128 ns, within one bucket (1/64 relative) above,
// percentiles capped at the true max, the overflow bucket, empty histograms, merge and clear.
#include "core/latency_histogram.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace spikeflow::core {
namespace {

TEST(LatencyHistogramTest, empty_histogram_reports_zeros) {
  const LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.mean(), 0.0);
  for (double q : {0.0, 0.5, 0.99, 1.0}) EXPECT_EQ(h.percentile(q), 0) << q;
  EXPECT_EQ(h.summary_us().rfind("n=0 ", 0), 0u) << h.summary_us();
}

TEST(LatencyHistogramTest, small_values_are_exact_and_percentiles_use_nearest_rank) {
  LatencyHistogram h;
  for (int64_t v = 100; v >= 1; --v) h.record(v);  // order does not matter
  EXPECT_EQ(h.count(), 100u);
  EXPECT_EQ(h.min(), 1);
  EXPECT_EQ(h.max(), 100);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
  // rank = floor(q * (n - 1)) + 1 over the sorted values 1..100.
  EXPECT_EQ(h.percentile(0.0), 1);
  EXPECT_EQ(h.percentile(0.5), 50);
  EXPECT_EQ(h.percentile(0.9), 90);
  EXPECT_EQ(h.percentile(0.99), 99);
  EXPECT_EQ(h.percentile(1.0), 100);
}

TEST(LatencyHistogramTest, quantile_outside_zero_one_is_clamped) {
  LatencyHistogram h;
  for (int64_t v : {3, 7, 11}) h.record(v);
  EXPECT_EQ(h.percentile(-0.5), h.percentile(0.0));
  EXPECT_EQ(h.percentile(1.5), h.percentile(1.0));
  EXPECT_EQ(h.percentile(1.5), 11);
}

TEST(LatencyHistogramTest, buckets_above_128_hold_values_within_one_64th) {
  // 128 and 129 share a bucket of width 2; its upper edge is 129.
  LatencyHistogram edge;
  for (int64_t v : {128, 129, 1000}) edge.record(v);
  EXPECT_EQ(edge.percentile(0.0), 129);
  EXPECT_EQ(edge.percentile(0.5), 129);
  // Every value reads back as the upper edge of its bucket: never below, at most 1/64 above.
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<int> exponent(7, 50);
  for (int k = 0; k < 2000; ++k) {
    const int e = exponent(rng);
    const auto v = static_cast<int64_t>((uint64_t{1} << e) + rng() % (uint64_t{1} << e));
    LatencyHistogram h;
    h.record(v);
    h.record(INT64_C(1) << 52);  // a larger max, so the percentile is not capped at v
    const int64_t got = h.percentile(0.0);
    EXPECT_GE(got, v);
    EXPECT_LE(static_cast<double>(got - v), static_cast<double>(v) / 64.0) << v;
  }
}

TEST(LatencyHistogramTest, percentile_is_capped_at_the_true_max) {
  LatencyHistogram h;
  h.record(1000);
  h.record(1001);  // bucket [1000, 1007]: its upper edge is above every recorded value
  EXPECT_EQ(h.max(), 1001);
  EXPECT_EQ(h.percentile(1.0), 1001);
  EXPECT_EQ(h.percentile(0.0), 1001);  // same bucket, so the same (capped) edge
}

TEST(LatencyHistogramTest, values_past_the_last_bucket_report_the_true_max) {
  LatencyHistogram h;
  const int64_t huge = INT64_C(1) << 55;  // past kMaxExp: the overflow bucket
  const int64_t huger = INT64_C(1) << 58;
  h.record(10);
  h.record(huge);
  h.record(huger);
  EXPECT_EQ(h.count(), 3u);
  EXPECT_EQ(h.max(), huger);
  EXPECT_EQ(h.percentile(0.0), 10);
  EXPECT_EQ(h.percentile(1.0), huger);
  // Both overflow values share one bucket: every quantile landing there reads the max.
  EXPECT_EQ(h.percentile(0.5), huger);
}

TEST(LatencyHistogramTest, negative_values_are_counted_in_the_zero_bucket) {
  LatencyHistogram h;
  h.record(-5);
  h.record(20);
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.percentile(0.0), 0);
  EXPECT_EQ(h.percentile(1.0), 20);
}

TEST(LatencyHistogramTest, merge_equals_recording_everything_in_one) {
  std::mt19937_64 rng(3);
  std::lognormal_distribution<double> latency(12.0, 1.5);  // ~160 µs median, long tail
  LatencyHistogram a, b, all;
  for (int k = 0; k < 5000; ++k) {
    const auto v = static_cast<int64_t>(latency(rng));
    (k % 3 ? a : b).record(v);
    all.record(v);
  }
  LatencyHistogram merged = a;
  merged.merge(b);
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_DOUBLE_EQ(merged.mean(), all.mean());
  for (double q : {0.0, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0})
    EXPECT_EQ(merged.percentile(q), all.percentile(q)) << q;
  EXPECT_EQ(merged.summary_us(), all.summary_us());
}

TEST(LatencyHistogramTest, merging_with_an_empty_histogram_changes_nothing) {
  LatencyHistogram h;
  for (int64_t v : {5, 500, 50'000}) h.record(v);
  const std::string before = h.summary_us();
  h.merge(LatencyHistogram{});
  EXPECT_EQ(h.summary_us(), before);
  EXPECT_EQ(h.min(), 5);
  LatencyHistogram empty;
  empty.merge(h);
  EXPECT_EQ(empty.count(), 3u);
  EXPECT_EQ(empty.min(), 5);
  EXPECT_EQ(empty.max(), 50'000);
  EXPECT_EQ(empty.summary_us(), before);
}

TEST(LatencyHistogramTest, clear_forgets_everything) {
  LatencyHistogram h;
  h.record(42);
  h.clear();
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.percentile(0.5), 0);
}

TEST(LatencyHistogramTest, summary_is_in_microseconds) {
  LatencyHistogram h;
  h.record(1500);
  EXPECT_EQ(h.summary_us(), "n=1 p50=1.5us p90=1.5us p99=1.5us p99.9=1.5us max=1.5us");
}

}  // namespace
}  // namespace spikeflow::core
