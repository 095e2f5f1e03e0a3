// core/checksum.h: the checksums stored in checkpoints, .sfs sessions and .sfrec recordings. The
// pinned values were computed by the hand-written loops these functions replaced (the CRC table in
// replay/crc32.h and session_file.cpp, the FNV loops in checkpoint_file.cpp and recorder.cpp): if
// one changes, every existing file stops reading.
#include "core/checksum.h"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

namespace spikeflow::core {
namespace {

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::vector<uint8_t> bytes_0_to_255() {
  std::vector<uint8_t> v(256);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<uint8_t>(i);
  return v;
}

TEST(ChecksumTest, crc32_matches_the_iso_hdlc_check_value) {
  EXPECT_EQ(crc32(as_bytes("123456789")), 0xCBF43926u);
}

TEST(ChecksumTest, crc32_matches_the_values_existing_files_store) {
  EXPECT_EQ(crc32({}), 0x00000000u);
  EXPECT_EQ(crc32(as_bytes("a")), 0xE8B7BE43u);
  EXPECT_EQ(crc32(as_bytes("spikeflow")), 0xDD3C7DD0u);
  EXPECT_EQ(crc32(bytes_0_to_255()), 0x29058C73u);
}

TEST(ChecksumTest, crc32_update_continues_over_split_input) {
  const auto b = as_bytes("123456789");
  EXPECT_EQ(crc32_update(crc32(b.first(4)), b.subspan(4)), 0xCBF43926u);
  EXPECT_EQ(crc32_update(0, b), 0xCBF43926u);
  EXPECT_EQ(crc32_update(0xCBF43926u, {}), 0xCBF43926u);
}

TEST(ChecksumTest, fnv1a64_keeps_spikeflows_offset_basis) {
  // Not the standard FNV-1a basis (0xCBF29CE484222325): see core/checksum.h.
  EXPECT_EQ(kFnv1a64Basis, 0x14650FB0739D0383ull);
  EXPECT_EQ(fnv1a64({}), kFnv1a64Basis);
}

TEST(ChecksumTest, fnv1a64_matches_the_values_existing_files_store) {
  EXPECT_EQ(fnv1a64(as_bytes("123456789")), 0xD24AA2B0863775FEull);
  EXPECT_EQ(fnv1a64(as_bytes("a")), 0x44BD8AD473CD9906ull);
  EXPECT_EQ(fnv1a64(as_bytes("spikeflow")), 0x1B10D96BF3391E5Bull);
  EXPECT_EQ(fnv1a64(bytes_0_to_255()), 0x16D173BDFCDAE583ull);
}

TEST(ChecksumTest, fnv1a64_update_continues_over_split_input) {
  const auto b = as_bytes("123456789");
  EXPECT_EQ(fnv1a64_update(fnv1a64(b.first(5)), b.subspan(5)), fnv1a64(b));
  EXPECT_EQ(fnv1a64_update(kFnv1a64Basis, b), fnv1a64(b));
}

}  // namespace
}  // namespace spikeflow::core
