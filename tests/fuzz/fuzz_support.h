// Helpers the libFuzzer targets share (tests/fuzz/CMakeLists.txt registers the targets; each
// harness sits beside its parser as <parser>_fuzz.cpp and calls only the parser's public API).
//  - FUZZ_CHECK: an invariant that must hold for every input; a failure prints the condition
//    and aborts, which libFuzzer reports as a crash and saves the input.
//  - FuzzFile: the input bytes as a file, for the parsers whose public API takes a path. One
//    file per process (libFuzzer's -jobs / -fork run separate processes), on tmpfs when there
//    is one, overwritten by every input and removed at exit.
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#define FUZZ_CHECK(cond)                                                                     \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

namespace spikeflow::fuzz {

class FuzzFile {
 public:
  /// suffix: the extension the parser expects (e.g. ".sfs"); part of the file name only.
  explicit FuzzFile(const std::string& suffix) {
    std::error_code ec;
    std::filesystem::path dir = "/dev/shm";
    if (!std::filesystem::is_directory(dir, ec)) dir = std::filesystem::temp_directory_path();
    path_ =
        (dir / ("spikeflow_fuzz_" + std::to_string(::getpid()) + "_" + suffix_tag(suffix) + suffix))
            .string();
  }
  ~FuzzFile() {
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }
  FuzzFile(const FuzzFile&) = delete;
  FuzzFile& operator=(const FuzzFile&) = delete;

  /// Replaces the file's contents with data[0, size); returns its path.
  const std::string& write(const uint8_t* data, size_t size) {
    std::ofstream out(path_, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
    out.close();
    if (!out) {
      std::fprintf(stderr, "fuzz: cannot write %s\n", path_.c_str());
      std::abort();
    }
    return path_;
  }
  const std::string& path() const { return path_; }

 private:
  static std::string suffix_tag(const std::string& suffix) {
    std::string t;
    for (char c : suffix) t += (c == '.') ? '_' : c;
    return t;
  }
  std::string path_;
};

/// Little-endian unsigned field at p (the caller checked the size).
template <typename T>
T read_le(const uint8_t* p) {
  T v{};
  for (size_t i = 0; i < sizeof(T); ++i)
    v = static_cast<T>(v | static_cast<T>(static_cast<T>(p[i]) << (8 * i)));
  return v;
}

/// Writes v little-endian at p.
template <typename T>
void write_le(uint8_t* p, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Checksums of the formats, computed independently of the parsers so that a harness can repair
// a mutated input's checksum and let the fuzzer reach the code behind the check. Both parsers
// and fix-ups follow the documented layouts (replay/SESSION_FORMAT.md, RECORDING_FORMAT.md,
// models/checkpoint_file.h).

/// CRC-32 ISO-HDLC (zlib / PNG): reflected poly 0xEDB88320, init and xorout 0xFFFFFFFF.
inline uint32_t crc32(const uint8_t* p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFu;
}

/// FNV-1a, 64 bits.
inline uint64_t fnv1a64(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace spikeflow::fuzz
