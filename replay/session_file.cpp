// Session file (.sfs), version 1 — byte layout (also in replay/SESSION_FORMAT.md).
// All integers little-endian; floats IEEE-754 binary32; times device ns (i64).
//
//   offset 0   8 bytes  magic 53 46 53 45 53 53 00 01 ("SFSESS" \0 \1)
//   offset 8   u32      version = 1
//   offset 12  u32      number of sections
//   offset 16  sections, back to back, to the end of the file; each:
//                char tag[4]; u32 crc32(data); u64 length L; u8 data[L]
//              CRC-32 is ISO-HDLC (zlib/PNG): reflected poly 0xEDB88320, init/xorout 0xFFFFFFFF.
//              Unknown tags are CRC-checked and skipped; trailing bytes are an error.
//   Version-1 sections, each exactly once, in this order:
//     META  i64 start_ns; i64 end_ns; u32 num_units U; u32 behavior_dim D;
//           u64 num_behavior_samples N; u32 num_trials K; u32 reserved           (40 bytes)
//     UNIT  U x { u32 channel; u16 unit; u16 reserved }                           (8U bytes)
//     SPIK  u64 count[U]; i64 t_ns[sum count] (unit by unit, ascending per unit)
//     BNAM  D x { u32 byte_length; u8 utf8[byte_length] }
//     BEHV  i64 t_ns[N]; f32 value[N*D] (row-major)
//     TRIL  K x { i64 start_ns; i64 end_ns; i32 condition; u32 reserved }         (24K bytes)
#include "replay/session_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include "replay/mat_session_reader.h"
#include "replay/nwb_session_reader.h"

namespace spikeflow::replay {
namespace {

constexpr std::array<char, 8> kMagic{'S', 'F', 'S', 'E', 'S', 'S', '\0', '\1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 16;
constexpr size_t kSectionHeaderBytes = 16;

static_assert(std::endian::native == std::endian::little || std::endian::native == std::endian::big);

uint32_t crc32(const uint8_t* data, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; ++i) c = table[(c ^ data[i]) & 0xFFu] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

// Little-endian encoder into a growing byte buffer.
class Writer {
 public:
  template <typename T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    std::array<uint8_t, sizeof(T)> b;
    std::memcpy(b.data(), &v, sizeof(T));
    if constexpr (std::endian::native == std::endian::big) std::reverse(b.begin(), b.end());
    buf_.insert(buf_.end(), b.begin(), b.end());
  }
  template <typename T>
  void put_array(const std::vector<T>& v) {
    if constexpr (std::endian::native == std::endian::little) {
      const auto* p = reinterpret_cast<const uint8_t*>(v.data());
      buf_.insert(buf_.end(), p, p + v.size() * sizeof(T));
    } else {
      for (const T& x : v) put(x);
    }
  }
  void put_bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  std::vector<uint8_t>& bytes() { return buf_; }

 private:
  std::vector<uint8_t> buf_;
};

// Little-endian decoder over one section's bytes; every read is bounds-checked and a short read
// throws with the file, section and what was being read.
class Reader {
 public:
  Reader(const uint8_t* p, size_t n, std::string where) : p_(p), n_(n), where_(std::move(where)) {}

  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    std::array<uint8_t, sizeof(T)> b;
    std::memcpy(b.data(), p_ + pos_, sizeof(T));
    if constexpr (std::endian::native == std::endian::big) std::reverse(b.begin(), b.end());
    pos_ += sizeof(T);
    T v;
    std::memcpy(&v, b.data(), sizeof(T));
    return v;
  }
  template <typename T>
  void get_array(std::vector<T>& out, size_t count, const char* what) {
    if (count > (n_ - pos_) / sizeof(T)) fail(std::string("truncated ") + what);
    out.resize(count);
    if constexpr (std::endian::native == std::endian::little) {
      // count == 0: out.data() may be null, and memcpy from or to null is undefined even for 0.
      if (count > 0) std::memcpy(out.data(), p_ + pos_, count * sizeof(T));
      pos_ += count * sizeof(T);
    } else {
      for (auto& x : out) x = get<T>(what);
    }
  }
  std::string get_string(size_t len, const char* what) {
    need(len, what);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return s;
  }
  /// Fails unless count records of at least bytes_each bytes can still follow: a corrupt count
  /// is an error, not a resize to billions of elements.
  void need_items(uint64_t count, size_t bytes_each, const char* what) {
    if (count > (n_ - pos_) / bytes_each) fail(std::string("truncated ") + what);
  }
  void expect_end() {
    if (pos_ != n_) fail(std::to_string(n_ - pos_) + " unexpected extra bytes");
  }
  [[noreturn]] void fail(const std::string& msg) const {
    throw std::runtime_error(where_ + ": " + msg);
  }

 private:
  void need(size_t k, const char* what) {
    if (k > n_ - pos_) fail(std::string("truncated ") + what);
  }
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  std::string where_;
};

void append_section(Writer& file, const char (&tag)[5], std::vector<uint8_t>& data) {
  file.put_bytes(tag, 4);
  file.put<uint32_t>(crc32(data.data(), data.size()));
  file.put<uint64_t>(data.size());
  file.put_bytes(data.data(), data.size());
}

std::vector<uint8_t> encode(const Session& s) {
  Writer file;
  file.put_bytes(kMagic.data(), kMagic.size());
  file.put<uint32_t>(kVersion);
  file.put<uint32_t>(6);

  const auto num_units = static_cast<uint32_t>(s.units.size());
  const auto dim = static_cast<uint32_t>(s.behavior_names.size());
  {
    Writer w;
    w.put<int64_t>(s.start_ns);
    w.put<int64_t>(s.end_ns);
    w.put<uint32_t>(num_units);
    w.put<uint32_t>(dim);
    w.put<uint64_t>(s.behavior_t_ns.size());
    w.put<uint32_t>(static_cast<uint32_t>(s.trials.size()));
    w.put<uint32_t>(0);
    append_section(file, "META", w.bytes());
  }
  {
    Writer w;
    for (const auto& u : s.units) {
      w.put<uint32_t>(u.channel);
      w.put<uint16_t>(u.unit);
      w.put<uint16_t>(0);
    }
    append_section(file, "UNIT", w.bytes());
  }
  {
    Writer w;
    for (const auto& t : s.spike_times_ns) w.put<uint64_t>(t.size());
    for (const auto& t : s.spike_times_ns) w.put_array(t);
    append_section(file, "SPIK", w.bytes());
  }
  {
    Writer w;
    for (const auto& n : s.behavior_names) {
      w.put<uint32_t>(static_cast<uint32_t>(n.size()));
      w.put_bytes(n.data(), n.size());
    }
    append_section(file, "BNAM", w.bytes());
  }
  {
    Writer w;
    w.put_array(s.behavior_t_ns);
    w.put_array(s.behavior);
    append_section(file, "BEHV", w.bytes());
  }
  {
    Writer w;
    for (const auto& t : s.trials) {
      w.put<int64_t>(t.start_ns);
      w.put<int64_t>(t.end_ns);
      w.put<int32_t>(t.condition);
      w.put<uint32_t>(0);
    }
    append_section(file, "TRIL", w.bytes());
  }
  return std::move(file.bytes());
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw std::runtime_error(path + ": no such file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open for reading");
  in.seekg(0, std::ios::end);
  const auto size = in.tellg();
  if (size < 0) throw std::runtime_error(path + ": cannot determine file size");
  in.seekg(0, std::ios::beg);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (!bytes.empty() && !in.read(reinterpret_cast<char*>(bytes.data()), size)) {
    throw std::runtime_error(path + ": read error");
  }
  return bytes;
}

Session decode(const std::vector<uint8_t>& bytes, const std::string& path) {
  const std::string file = path + ": session file";
  if (bytes.size() < kMagic.size() ||
      !std::equal(kMagic.begin(), kMagic.end(), reinterpret_cast<const char*>(bytes.data()))) {
    throw std::runtime_error(file + ": wrong magic (not a spikeflow .sfs file)");
  }
  if (bytes.size() < kHeaderBytes) {
    throw std::runtime_error(file + ": truncated header (" + std::to_string(bytes.size()) +
                             " bytes)");
  }
  Reader header(bytes.data() + kMagic.size(), kHeaderBytes - kMagic.size(), file);
  const auto version = header.get<uint32_t>("version");
  if (version != kVersion) {
    throw std::runtime_error(file + ": unsupported version " + std::to_string(version) +
                             " (this build reads version " + std::to_string(kVersion) + ")");
  }
  const auto num_sections = header.get<uint32_t>("section count");

  // Split into sections, checking lengths and CRCs before interpreting anything.
  struct Section {
    std::string tag;
    const uint8_t* data;
    size_t size;
  };
  std::vector<Section> sections;
  size_t pos = kHeaderBytes;
  for (uint32_t i = 0; i < num_sections; ++i) {
    if (bytes.size() - pos < kSectionHeaderBytes) {
      throw std::runtime_error(file + ": truncated: section " + std::to_string(i) + " of " +
                               std::to_string(num_sections) + " is missing or cut short");
    }
    Reader sh(bytes.data() + pos, kSectionHeaderBytes, file);
    std::string tag = sh.get_string(4, "section tag");
    const auto crc = sh.get<uint32_t>("section crc");
    const auto len = sh.get<uint64_t>("section length");
    pos += kSectionHeaderBytes;
    if (len > bytes.size() - pos) {
      throw std::runtime_error(file + ": truncated: section '" + tag + "' declares " +
                               std::to_string(len) + " bytes but only " +
                               std::to_string(bytes.size() - pos) + " remain");
    }
    const uint32_t actual = crc32(bytes.data() + pos, static_cast<size_t>(len));
    if (actual != crc) {
      throw std::runtime_error(file + ": corrupt: checksum mismatch in section '" + tag + "'");
    }
    sections.push_back({std::move(tag), bytes.data() + pos, static_cast<size_t>(len)});
    pos += static_cast<size_t>(len);
  }
  if (pos != bytes.size()) {
    throw std::runtime_error(file + ": " + std::to_string(bytes.size() - pos) +
                             " unexpected bytes after the last section");
  }
  auto find = [&](const char* tag) -> Reader {
    const Section* found = nullptr;
    for (const auto& s : sections) {
      if (s.tag == tag) {
        if (found) throw std::runtime_error(file + ": section '" + tag + "' appears twice");
        found = &s;
      }
    }
    if (!found) throw std::runtime_error(file + ": missing section '" + tag + "'");
    return Reader(found->data, found->size, file + ", section '" + tag + "'");
  };

  Session s;
  Reader meta = find("META");
  s.start_ns = meta.get<int64_t>("start_ns");
  s.end_ns = meta.get<int64_t>("end_ns");
  const auto num_units = meta.get<uint32_t>("num_units");
  const auto dim = meta.get<uint32_t>("behavior_dim");
  const auto num_samples = meta.get<uint64_t>("num_behavior_samples");
  const auto num_trials = meta.get<uint32_t>("num_trials");
  meta.get<uint32_t>("reserved");
  meta.expect_end();

  Reader unit = find("UNIT");
  unit.need_items(num_units, 8, "units");
  s.units.resize(num_units);
  for (auto& u : s.units) {
    u.channel = unit.get<uint32_t>("unit channel");
    u.unit = unit.get<uint16_t>("unit code");
    unit.get<uint16_t>("unit reserved");
  }
  unit.expect_end();

  Reader spik = find("SPIK");
  std::vector<uint64_t> counts;
  spik.get_array(counts, num_units, "spike counts");
  s.spike_times_ns.resize(num_units);
  for (uint32_t u = 0; u < num_units; ++u) spik.get_array(s.spike_times_ns[u], counts[u], "spike times");
  spik.expect_end();

  Reader bnam = find("BNAM");
  bnam.need_items(dim, 4, "behaviour names");
  s.behavior_names.resize(dim);
  for (auto& n : s.behavior_names) {
    const auto len = bnam.get<uint32_t>("behaviour name length");
    n = bnam.get_string(len, "behaviour name");
  }
  bnam.expect_end();

  Reader behv = find("BEHV");
  behv.get_array(s.behavior_t_ns, static_cast<size_t>(num_samples), "behaviour times");
  if (dim != 0 && num_samples > SIZE_MAX / dim) behv.fail("behaviour size overflows");
  behv.get_array(s.behavior, static_cast<size_t>(num_samples) * dim, "behaviour values");
  behv.expect_end();

  Reader tril = find("TRIL");
  tril.need_items(num_trials, 24, "trials");
  s.trials.resize(num_trials);
  for (auto& t : s.trials) {
    t.start_ns = tril.get<int64_t>("trial start");
    t.end_ns = tril.get<int64_t>("trial end");
    t.condition = tril.get<int32_t>("trial condition");
    tril.get<uint32_t>("trial reserved");
  }
  tril.expect_end();

  s.validate(file);
  return s;
}

std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

}  // namespace

void write_session_file(const Session& session, const std::string& path) {
  session.validate(path + ": refusing to write");
  const std::vector<uint8_t> bytes = encode(session);

  // Temp file in the same directory so that rename() is atomic (same file system); fsync before
  // the rename so a crash leaves either the old file or the complete new one.
  std::random_device rd;
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(rd());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error(path + ": cannot create temporary file " + tmp + ": " +
                             std::strerror(errno));
  }
  auto fail = [&](const std::string& what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": " + what + ": " + std::strerror(err));
  };
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("write failed");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail("fsync failed");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": close failed: " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw std::runtime_error(path + ": rename from " + tmp + " failed: " + std::strerror(err));
  }
}

Session read_session_file(const std::string& path) { return decode(read_all(path), path); }

Session load_session(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw std::runtime_error(path + ": no such session file");
  }
  // Content first (magic), extension second, so a renamed file still loads.
  std::array<char, 8> head{};
  {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(path + ": cannot open for reading");
    in.read(head.data(), head.size());
  }
  const std::string ext = lower_extension(path);
  if (head == kMagic) return read_session_file(path);
  // MAT v5 and v7.3 (HDF5 with a 512-byte user block) both start with this text header.
  // Checked before the HDF5 signature: a v7.3 MAT file is HDF5 behind that text header.
  if (std::string(head.data(), 6) == "MATLAB") return read_mat_session(path, MatReadOptions{});
  // HDF5 signature at offset 0 (no user block): NWB 2.x, read with NwbReadOptions' defaults
  // (behaviour TimeSeries "hand_vel" under /processing/behavior, trials from /intervals/trials).
  constexpr std::array<char, 8> kHdf5Magic{'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  if (head == kHdf5Magic) return read_nwb_session(path, NwbReadOptions{});
  if (ext == ".sfs") return read_session_file(path);  // reports the wrong magic
  if (ext == ".mat") return read_mat_session(path, MatReadOptions{});
  if (ext == ".nwb") return read_nwb_session(path, NwbReadOptions{});
  throw std::runtime_error(path + ": unsupported session format (expected a .sfs session file, "
                                  "a .mat TrialData file or a .nwb NWB 2.x file)");
}

}  // namespace spikeflow::replay
