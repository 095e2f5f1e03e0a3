#include "core/unit_map.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace spikeflow::core {

TEST(UnitMapTest, maps_keys_to_their_index_and_unknowns_to_minus_one) {
  UnitMap map({{3, 1}, {0, 0}, {3, 2}});
  EXPECT_EQ(map.size(), 3u);
  EXPECT_EQ(map.find(3, 1), 0);
  EXPECT_EQ(map.find(0, 0), 1);
  EXPECT_EQ(map.find(3, 2), 2);
  EXPECT_EQ(map.find(3, 0), UnitMap::kUnknown);
  EXPECT_EQ(map.find(4, 1), UnitMap::kUnknown);
  EXPECT_EQ(map.find(70000, 1), UnitMap::kUnknown);
  EXPECT_EQ(map.find(0, 200), UnitMap::kUnknown);
}

TEST(UnitMapTest, duplicate_key_is_rejected) {
  EXPECT_THROW(UnitMap({{1, 1}, {1, 1}}), std::invalid_argument);
}

TEST(UnitMapTest, empty_map_finds_nothing) {
  UnitMap map;
  EXPECT_EQ(map.find(0, 0), UnitMap::kUnknown);
}

}  // namespace spikeflow::core
