#include "core/checksum.h"

#include <zlib.h>

namespace spikeflow::core {

uint32_t crc32_update(uint32_t crc, std::span<const uint8_t> bytes) noexcept {
  // crc32_z takes a z_size_t length (zlib >= 1.2.9), so spans over 4 GiB need no splitting.
  // zlib accepts a null buffer only to return its initial value, so an empty span is a no-op.
  if (bytes.empty()) return crc;
  return static_cast<uint32_t>(::crc32_z(crc, bytes.data(), bytes.size()));
}

uint32_t crc32(std::span<const uint8_t> bytes) noexcept { return crc32_update(0, bytes); }

uint64_t fnv1a64_update(uint64_t hash, std::span<const uint8_t> bytes) noexcept {
  constexpr uint64_t kPrime = 0x100000001B3ull;
  for (const uint8_t b : bytes) {
    hash ^= b;
    hash *= kPrime;
  }
  return hash;
}

uint64_t fnv1a64(std::span<const uint8_t> bytes) noexcept {
  return fnv1a64_update(kFnv1a64Basis, bytes);
}

}  // namespace spikeflow::core
