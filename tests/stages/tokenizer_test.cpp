#include <gtest/gtest.h>

#include "core/chunk_flags.h"
#include "stages/tokenizer.h"

namespace spikeflow::stages {
namespace {

TEST(TokenizerTest, maps_units_and_offsets_and_counts_unknown_units) {
  Tokenizer t(core::UnitMap({{1, 1}, {2, 1}}));
  core::RawChunk c;
  c.seq = 20;
  c.start_ns = 1'000'000'000;
  c.end_ns = 1'050'000'000;
  c.events = {{1'000'000'000, 2, 1, 0}, {1'025'000'000, 1, 1, 0}, {1'030'000'000, 9, 1, 0}};
  core::TokenChunk out;
  t.tokenize(c, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out.unit[0], 1);
  EXPECT_EQ(out.unit[1], 0);
  EXPECT_FLOAT_EQ(out.offset_s[0], 0.0f);
  EXPECT_FLOAT_EQ(out.offset_s[1], 0.025f);
  EXPECT_EQ(out.seq, 20);
  EXPECT_TRUE(core::has_flag(out.flags, core::ChunkFlag::kUnknownUnits));
  EXPECT_EQ(t.stats().unknown_unit_events, 1u);
  EXPECT_EQ(t.stats().tokens, 2u);
}

TEST(TokenizerTest, chunk_of_only_unknown_units_is_empty) {
  Tokenizer t(core::UnitMap({{1, 1}}));
  core::RawChunk c;
  c.events = {{0, 5, 5, 0}};
  core::TokenChunk out;
  out.unit = {3};  // stale content must be cleared
  out.offset_s = {0.1f};
  t.tokenize(c, out);
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(core::has_flag(out.flags, core::ChunkFlag::kEmpty));
}

}  // namespace
}  // namespace spikeflow::stages
