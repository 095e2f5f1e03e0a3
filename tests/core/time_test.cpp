#include "core/time.h"

#include <gtest/gtest.h>

namespace spikeflow::core {

TEST(TimeTest, chunk_index_is_floor_division) {
  const int64_t w = 50 * kNsPerMs;
  EXPECT_EQ(chunk_index(0, w), 0);
  EXPECT_EQ(chunk_index(w - 1, w), 0);
  EXPECT_EQ(chunk_index(w, w), 1);
  EXPECT_EQ(chunk_index(-1, w), -1);
  EXPECT_EQ(chunk_index(-w, w), -1);
  EXPECT_EQ(chunk_index(-w - 1, w), -2);
}

TEST(TimeTest, offset_in_chunk_is_seconds_from_start) {
  EXPECT_FLOAT_EQ(offset_in_chunk_s(1'025'000'000, 1'000'000'000), 0.025f);
}

}  // namespace spikeflow::core
