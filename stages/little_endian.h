// Little-endian load/store of fixed-width integers from/to byte buffers, independent of the host's
// byte order and alignment. Shared by the ingest format codecs (Blackrock, Intan, framed native).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

namespace spikeflow::stages {

/// Reads a T stored little-endian at p (sizeof(T) readable bytes, any alignment).
template <typename T>
T load_le(const uint8_t* p) {
  static_assert(std::is_integral_v<T>);
  using U = std::make_unsigned_t<T>;
  U u = 0;
  for (size_t i = 0; i < sizeof(T); ++i) u |= static_cast<U>(static_cast<U>(p[i]) << (8 * i));
  return static_cast<T>(u);
}

/// Appends value little-endian to out.
template <typename T>
void append_le(std::vector<uint8_t>& out, T value) {
  static_assert(std::is_integral_v<T>);
  using U = std::make_unsigned_t<T>;
  auto u = static_cast<U>(value);
  for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<uint8_t>(u >> (8 * i)));
}

}  // namespace spikeflow::stages
