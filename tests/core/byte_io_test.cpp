// core/byte_io.h: little-endian load/store of every width, the bounds-checked reader (reading past
// the end fails cleanly and touches nothing), the appending writer and the fixed-span writer.
#include "core/byte_io.h"

#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <limits>
#include <vector>

namespace spikeflow::core {
namespace {

TEST(ByteIoTest, load_le_reads_little_endian_at_any_alignment) {
  const std::array<uint8_t, 10> b{0xAA, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0xBB};
  EXPECT_EQ(load_le<uint8_t>(b.data() + 1), 0x01u);
  EXPECT_EQ(load_le<uint16_t>(b.data() + 1), 0x0201u);
  EXPECT_EQ(load_le<uint32_t>(b.data() + 1), 0x04030201u);
  EXPECT_EQ(load_le<uint64_t>(b.data() + 1), 0x0807060504030201ull);
  const std::array<uint8_t, 8> neg{0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  EXPECT_EQ(load_le<int8_t>(neg.data()), -2);
  EXPECT_EQ(load_le<int16_t>(neg.data()), -2);
  EXPECT_EQ(load_le<int32_t>(neg.data()), -2);
  EXPECT_EQ(load_le<int64_t>(neg.data()), -2);
  const std::array<uint8_t, 4> one_f32{0x00, 0x00, 0x80, 0x3F};  // 1.0f, IEEE-754 binary32
  EXPECT_EQ(load_le<float>(one_f32.data()), 1.0f);
  const std::array<uint8_t, 8> one_f64{0, 0, 0, 0, 0, 0, 0xF0, 0x3F};  // 1.0
  EXPECT_EQ(load_le<double>(one_f64.data()), 1.0);
}

template <typename T>
void expect_round_trip(T v) {
  std::array<uint8_t, sizeof(T) + 3> b{};
  store_le<T>(b.data() + 3, v);  // unaligned on purpose
  EXPECT_EQ(load_le<T>(b.data() + 3), v);
}

TEST(ByteIoTest, store_then_load_round_trips_every_type) {
  expect_round_trip<uint8_t>(0xAB);
  expect_round_trip<int8_t>(std::numeric_limits<int8_t>::min());
  expect_round_trip<uint16_t>(0xBEEF);
  expect_round_trip<int16_t>(-12345);
  expect_round_trip<uint32_t>(0xDEADBEEFu);
  expect_round_trip<int32_t>(std::numeric_limits<int32_t>::min());
  expect_round_trip<uint64_t>(0x0123456789ABCDEFull);
  expect_round_trip<int64_t>(std::numeric_limits<int64_t>::min());
  expect_round_trip<float>(-3.25f);
  expect_round_trip<double>(6.02214076e23);
}

TEST(ByteIoTest, store_le_writes_the_wire_order) {
  std::array<uint8_t, 4> b{};
  store_le<uint32_t>(b.data(), 0x4B465053u);
  EXPECT_EQ(b, (std::array<uint8_t, 4>{'S', 'P', 'F', 'K'}));
}

TEST(ByteIoTest, writer_and_reader_round_trip_a_record) {
  std::vector<uint8_t> out{0x99};  // a writer appends after what is already there
  ByteWriter w(out);
  w.write<uint32_t>(7);
  w.write<int64_t>(-5);
  w.write<float>(0.5f);
  w.write_chars("hi");
  const std::vector<int64_t> arr{1, -2, 3};
  w.write_array<int64_t>(arr);
  w.write<uint16_t>(0);
  w.patch<uint16_t>(w.size() - 2, 0xCAFE);
  EXPECT_EQ(w.size(), 1u + 4 + 8 + 4 + 2 + 24 + 2);
  EXPECT_EQ(out[1], 7u);

  ByteReader r(std::span<const uint8_t>(out).subspan(1));
  EXPECT_EQ(r.size(), out.size() - 1);
  EXPECT_EQ(r.read<uint32_t>(), 7u);
  EXPECT_EQ(r.read<int64_t>(), -5);
  EXPECT_EQ(r.read<float>(), 0.5f);
  EXPECT_EQ(r.chars(2), "hi");
  std::array<int64_t, 3> back{};
  EXPECT_TRUE(r.read_array<int64_t>(back));
  EXPECT_EQ(back, (std::array<int64_t, 3>{1, -2, 3}));
  EXPECT_EQ(r.remaining(), 2u);
  EXPECT_EQ(r.read<uint16_t>(), 0xCAFE);
  EXPECT_TRUE(r.done());
}

TEST(ByteIoTest, reading_past_the_end_fails_cleanly_and_stays_failed) {
  const std::array<uint8_t, 5> b{1, 2, 3, 4, 5};
  ByteReader r(b);
  EXPECT_EQ(r.read<uint32_t>(), 0x04030201u);
  EXPECT_EQ(r.read<uint32_t>(), 0u);  // 1 byte left: fails, position unchanged
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.position(), 4u);
  EXPECT_EQ(r.remaining(), 1u);
  // Sticky: even a read that would fit now fails, so one ok() check covers a run of reads.
  EXPECT_EQ(r.read<uint8_t>(), 0u);
  EXPECT_FALSE(r.done());
}

TEST(ByteIoTest, bytes_skip_and_arrays_are_bounds_checked) {
  const std::array<uint8_t, 6> b{1, 2, 3, 4, 5, 6};
  {
    ByteReader r(b);
    EXPECT_TRUE(r.skip(2));
    const auto s = r.bytes(3);
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(s[0], 3u);
    EXPECT_TRUE(r.bytes(2).empty());
    EXPECT_FALSE(r.ok());
  }
  {
    ByteReader r(b);
    EXPECT_FALSE(r.skip(7));
    EXPECT_FALSE(r.ok());
  }
  {
    ByteReader r(b);
    std::array<uint32_t, 2> two{9, 9};
    EXPECT_FALSE(r.read_array<uint32_t>(two));  // 8 bytes wanted, 6 there
    EXPECT_EQ(two, (std::array<uint32_t, 2>{9, 9}));
    EXPECT_FALSE(r.ok());
  }
  {
    // A huge declared length (a damaged length field) must not overflow the bounds check.
    ByteReader r(b);
    r.skip(1);
    EXPECT_TRUE(r.bytes(SIZE_MAX).empty());
    EXPECT_FALSE(r.ok());
  }
  {
    ByteReader r(std::span<const uint8_t>{});
    EXPECT_TRUE(r.done());
    EXPECT_TRUE(r.bytes(0).empty());
    EXPECT_TRUE(r.ok());
    r.fail();
    EXPECT_FALSE(r.ok());
  }
}

TEST(ByteIoTest, span_writer_writes_in_place_and_refuses_what_does_not_fit) {
  std::array<uint8_t, 7> b{};
  SpanWriter w(b);
  w.write<uint32_t>(0x04030201u);
  w.write_chars("ab");
  EXPECT_TRUE(w.ok());
  EXPECT_EQ(w.remaining(), 1u);
  w.write<uint16_t>(0xFFFF);  // does not fit: nothing written
  EXPECT_FALSE(w.ok());
  EXPECT_EQ(b, (std::array<uint8_t, 7>{1, 2, 3, 4, 'a', 'b', 0}));
  EXPECT_FALSE(w.done());

  std::array<uint8_t, 2> exact{};
  SpanWriter e(exact);
  e.write<uint16_t>(0x0201);
  EXPECT_TRUE(e.done());
}

}  // namespace
}  // namespace spikeflow::core
