// Checksums stored in spikeflow's files. Their values are part of the file formats: changing one
// makes every existing file unreadable (tests/core/checksum_test.cpp pins them).
//
//   crc32    CRC-32/ISO-HDLC as zlib, PNG and gzip compute it (reflected polynomial 0xEDB88320,
//            init and final xor 0xFFFFFFFF; crc32("123456789") = 0xCBF43926). Frames the sections
//            of .sfs session files and the header and records of .sfrec recordings. Computed by
//            zlib's crc32_z.
//   fnv1a64  FNV-1a, 64-bit (Fowler, Noll, Vo; draft-eastlake-fnv), prime 0x100000001B3, BUT with
//            spikeflow's offset basis kFnv1a64Basis = 1469598103934665603 (0x14650FB0739D0383):
//            the standard basis 14695981039346656037 with its last decimal digit missing. The first
//            checkpoints were written with it, so it stays; do not "fix" it, and do not expect
//            other FNV tools to agree. The file-identity hash: the checksum at the end of every
//            checkpoint, and the hash in a recording's model identity ("<size>:<hash hex>").
//
// Pure functions of their arguments; safe from any thread; no allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace spikeflow::core {

/// CRC-32 of bytes.
[[nodiscard]] uint32_t crc32(std::span<const uint8_t> bytes) noexcept;
/// Continues a CRC-32 over more bytes: crc32_update(crc32(a), b) == crc32(a ++ b), and
/// crc32_update(0, a) == crc32(a).
[[nodiscard]] uint32_t crc32_update(uint32_t crc, std::span<const uint8_t> bytes) noexcept;

/// fnv1a64 of an empty input and the starting value for fnv1a64_update (see the file comment).
inline constexpr uint64_t kFnv1a64Basis = 1469598103934665603ull;
/// FNV-1a 64 of bytes.
[[nodiscard]] uint64_t fnv1a64(std::span<const uint8_t> bytes) noexcept;
/// Continues an FNV-1a 64 over more bytes: fnv1a64_update(fnv1a64(a), b) == fnv1a64(a ++ b), and
/// fnv1a64_update(kFnv1a64Basis, a) == fnv1a64(a).
[[nodiscard]] uint64_t fnv1a64_update(uint64_t hash, std::span<const uint8_t> bytes) noexcept;

}  // namespace spikeflow::core
