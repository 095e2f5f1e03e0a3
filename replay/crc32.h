// CRC-32 (ISO-HDLC, as zlib / PNG / gzip: reflected polynomial 0xEDB88320, init and final xor
// 0xFFFFFFFF; check value crc32("123456789") = 0xCBF43926). Used by the recording file to frame
// its records. Pure functions, table built at compile time; safe from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace spikeflow::replay {

namespace detail {
constexpr std::array<uint32_t, 256> make_crc32_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
inline constexpr std::array<uint32_t, 256> kCrc32Table = make_crc32_table();
}  // namespace detail

/// Continues a CRC over more bytes: crc32_update(crc32_update(0, a), b) == crc32(a ++ b).
inline uint32_t crc32_update(uint32_t crc, const uint8_t* data, size_t n) noexcept {
  uint32_t c = crc ^ 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = detail::kCrc32Table[(c ^ data[i]) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

inline uint32_t crc32(const uint8_t* data, size_t n) noexcept { return crc32_update(0, data, n); }

}  // namespace spikeflow::replay
