// libFuzzer target: a checkpoint into CheckpointFile::read and its typed metadata getters
// (models/checkpoint_file.h; torch-free, compiled straight into the target). Each input is read
// twice: as is, then with total_size and the FNV-1a checksum repaired so that mutations reach
// the body decoder.
// Invariants: bad input is a std::runtime_error, nothing else (getters included); an accepted
// file's strings fit in it, and it writes and reads back to the same container.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "models/checkpoint_file.h"
#include "tests/fuzz/fuzz_support.h"

using namespace spikeflow;

namespace {

void check(const uint8_t* data, size_t size) {
  static fuzz::FuzzFile file(".ckpt");
  static fuzz::FuzzFile copy("_copy.ckpt");
  models::CheckpointFile ck;
  try {
    ck = models::CheckpointFile::read(file.write(data, size));
  } catch (const std::runtime_error&) {
    return;
  }
  size_t bytes = ck.kind.size() + ck.payload.size();
  for (const auto& [k, v] : ck.meta) bytes += k.size() + v.size();
  FUZZ_CHECK(bytes <= size);
  for (const auto& [k, v] : ck.meta) {
    try {
      (void)ck.get_int(k);
    } catch (const std::runtime_error&) {
    }
    try {
      (void)ck.get_double(k);
    } catch (const std::runtime_error&) {
    }
    try {
      (void)ck.get_floats(k);
    } catch (const std::runtime_error&) {
    }
    try {
      (void)ck.get_units(k);
    } catch (const std::runtime_error&) {
    }
    try {
      (void)ck.get_strings(k);
    } catch (const std::runtime_error&) {
    }
  }
  ck.write(copy.path());
  const models::CheckpointFile again = models::CheckpointFile::read(copy.path());
  FUZZ_CHECK(again.kind == ck.kind && again.kind_version == ck.kind_version);
  FUZZ_CHECK(again.meta == ck.meta && again.payload == ck.payload);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  check(data, size);
  // "SPKFLWCK", u32 version, u64 total_size at 12, ..., u64 FNV-1a of every byte before it.
  if (size >= 28) {
    std::vector<uint8_t> fixed(data, data + size);
    fuzz::write_le<uint64_t>(&fixed[12], static_cast<uint64_t>(size));
    fuzz::write_le<uint64_t>(&fixed[size - 8], fuzz::fnv1a64(fixed.data(), size - 8));
    if (!std::equal(fixed.begin(), fixed.end(), data)) check(fixed.data(), fixed.size());
  }
  return 0;
}
