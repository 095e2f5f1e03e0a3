// Little-endian byte I/O: the one place spikeflow turns fixed-width numbers into bytes and back.
// Every wire and file format (native packets, Blackrock, Intan, the prediction message,
// checkpoints, .sfs sessions, .sfrec recordings) is little-endian; these helpers hold that
// independently of the host's byte order and of alignment.
//
//   load_le / store_le  one value at a raw pointer; the caller has checked the bounds (the packet
//                       decoders check a datagram's length once, then read fixed offsets).
//   ByteReader          a cursor over a std::span<const uint8_t>; every read is bounds-checked.
//   ByteWriter          appends to a std::vector<uint8_t> (grows it).
//   SpanWriter          a cursor over a fixed std::span<uint8_t>; every write is bounds-checked.
//
// Failure model (readers and SpanWriter): a read or write that would run past the end does not
// touch memory; it sets a sticky failure flag (ok() turns false), returns zero / an empty span, and
// leaves the position where it was. Callers check ok() once after a run of reads and report in
// their own words (a file's reader throws naming the file; a packet decoder counts a drop). None of
// these throw, allocate (ByteWriter aside, which grows its vector) or log, so they may be used in
// the hot packet path.
//
// Thread contract: none of these types hold shared state; one instance belongs to one thread.
// load_le/store_le are plain functions, safe anywhere.
//
// Performance: load_le, store_le, ByteReader and SpanWriter are inline and memcpy-based, so on a
// little-endian host load_le<T> is one (unaligned) load and store_le<T> one store, like the
// hand-written loops they replace. ByteWriter appends through one out-of-line call per value.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

namespace spikeflow::core {

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big,
              "mixed-endian hosts are not supported");

/// The value types the wire and file formats use: u8..u64, i8..i64, f32, f64.
template <typename T>
concept LeScalar = (std::is_integral_v<T> && !std::is_same_v<T, bool>) ||
                   std::is_same_v<T, float> || std::is_same_v<T, double>;

/// Reads a T stored little-endian at p. p must have sizeof(T) readable bytes; any alignment.
template <LeScalar T>
[[nodiscard]] inline T load_le(const uint8_t* p) noexcept {
  std::array<uint8_t, sizeof(T)> b;
  std::memcpy(b.data(), p, sizeof(T));
  if constexpr (std::endian::native == std::endian::big) std::reverse(b.begin(), b.end());
  T v;
  std::memcpy(&v, b.data(), sizeof(T));
  return v;
}

/// Writes value little-endian at p. p must have sizeof(T) writable bytes; any alignment.
template <LeScalar T>
inline void store_le(uint8_t* p, T value) noexcept {
  std::array<uint8_t, sizeof(T)> b;
  std::memcpy(b.data(), &value, sizeof(T));
  if constexpr (std::endian::native == std::endian::big) std::reverse(b.begin(), b.end());
  std::memcpy(p, b.data(), sizeof(T));
}

namespace detail {

/// Position, size and sticky failure flag of a bounds-checked cursor (ByteReader, SpanWriter).
class Cursor {
 public:
  /// False once any access ran past the end or fail() was called.
  [[nodiscard]] bool ok() const noexcept { return ok_; }
  /// ok() and every byte consumed: the content had exactly the size it declared.
  [[nodiscard]] bool done() const noexcept { return ok_ && pos_ == size_; }
  [[nodiscard]] size_t position() const noexcept { return pos_; }
  [[nodiscard]] size_t remaining() const noexcept { return size_ - pos_; }
  [[nodiscard]] size_t size() const noexcept { return size_; }
  /// Marks the content invalid (it disagrees with itself, e.g. a count and a length).
  void fail() noexcept { ok_ = false; }

 protected:
  explicit Cursor(size_t size) noexcept : size_(size) {}
  /// Advances by n and returns true, or fails (position unchanged) when fewer than n remain.
  bool take(size_t n) noexcept {
    if (!ok_ || n > size_ - pos_) {
      ok_ = false;
      return false;
    }
    pos_ += n;
    return true;
  }

 private:
  size_t size_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace detail

/// A bounds-checked little-endian cursor over bytes it does not own (the span must outlive it).
/// Reads past the end fail cleanly: see the file comment.
class ByteReader : public detail::Cursor {
 public:
  explicit ByteReader(std::span<const uint8_t> bytes) noexcept
      : Cursor(bytes.size()), bytes_(bytes) {}

  /// The next T, or T{} (and ok() false) when fewer than sizeof(T) bytes remain.
  template <LeScalar T>
  [[nodiscard]] T read() noexcept {
    if (!take(sizeof(T))) return T{};
    return load_le<T>(bytes_.data() + position() - sizeof(T));
  }

  /// The next n bytes as a view into the underlying span, or an empty span (and ok() false)
  /// when fewer remain.
  [[nodiscard]] std::span<const uint8_t> bytes(size_t n) noexcept {
    if (!take(n)) return {};
    return bytes_.subspan(position() - n, n);
  }

  /// The next n bytes viewed as characters (e.g. a UTF-8 string); empty on failure like bytes().
  [[nodiscard]] std::string_view chars(size_t n) noexcept {
    const auto b = bytes(n);
    return {reinterpret_cast<const char*>(b.data()), b.size()};
  }

  /// Fills out with the next out.size() little-endian values (a bulk array); on a short read
  /// leaves out untouched and fails.
  template <LeScalar T>
  bool read_array(std::span<T> out) noexcept {
    if (!ok() || out.size() > remaining() / sizeof(T)) {
      fail();
      return false;
    }
    const uint8_t* p = bytes_.data() + position();
    if constexpr (std::endian::native == std::endian::little) {
      if (!out.empty()) std::memcpy(out.data(), p, out.size() * sizeof(T));
    } else {
      for (size_t i = 0; i < out.size(); ++i) out[i] = load_le<T>(p + i * sizeof(T));
    }
    take(out.size() * sizeof(T));
    return true;
  }

  /// Skips n bytes; false (and ok() false) when fewer remain.
  bool skip(size_t n) noexcept { return take(n); }

 private:
  std::span<const uint8_t> bytes_;
};

/// Appends little-endian values to a vector it does not own (which must outlive it). Grows the
/// vector as needed (reserve_more() first to allocate once). For encoders off the hot path:
/// senders, test generators, files written offline.
class ByteWriter {
 public:
  explicit ByteWriter(std::vector<uint8_t>& out) noexcept : out_(out) {}

  template <LeScalar T>
  void write(T value) {
    std::array<uint8_t, sizeof(T)> b;
    store_le<T>(b.data(), value);
    write_bytes(b);
  }

  /// Out of line (byte_io.cpp): GCC 12 reports false -Wstringop-overflow warnings when
  /// vector::insert is inlined into a fresh vector. No writer runs in a hot path.
  void write_bytes(std::span<const uint8_t> b);
  void write_chars(std::string_view s) {
    write_bytes({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  }

  /// Appends every value of a bulk array, little-endian.
  template <LeScalar T>
  void write_array(std::span<const T> values) {
    if constexpr (std::endian::native == std::endian::little) {
      write_bytes({reinterpret_cast<const uint8_t*>(values.data()), values.size_bytes()});
    } else {
      for (const T& v : values) write(v);
    }
  }

  /// Overwrites a value written earlier at byte offset `at` of the vector (e.g. a length or total
  /// size known only at the end). `at + sizeof(T)` must not exceed size().
  template <LeScalar T>
  void patch(size_t at, T value) noexcept {
    store_le<T>(out_.data() + at, value);
  }

  void reserve_more(size_t n) { out_.reserve(out_.size() + n); }
  /// Bytes in the vector (including any it held before this writer was made).
  [[nodiscard]] size_t size() const noexcept { return out_.size(); }

 private:
  std::vector<uint8_t>& out_;
};

/// Writes little-endian values into a fixed span it does not own. Never allocates; a write that
/// does not fit writes nothing and fails (ok() false), like ByteReader.
class SpanWriter : public detail::Cursor {
 public:
  explicit SpanWriter(std::span<uint8_t> bytes) noexcept : Cursor(bytes.size()), bytes_(bytes) {}

  template <LeScalar T>
  void write(T value) noexcept {
    if (take(sizeof(T))) store_le<T>(bytes_.data() + position() - sizeof(T), value);
  }

  void write_bytes(std::span<const uint8_t> b) noexcept {
    if (take(b.size()) && !b.empty()) {
      std::memcpy(bytes_.data() + position() - b.size(), b.data(), b.size());
    }
  }
  void write_chars(std::string_view s) noexcept {
    write_bytes({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
  }

 private:
  std::span<uint8_t> bytes_;
};

}  // namespace spikeflow::core
