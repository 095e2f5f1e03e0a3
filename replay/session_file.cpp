// Session file (.sfs), version 1 — byte layout (also in replay/SESSION_FORMAT.md).
// All integers little-endian; floats IEEE-754 binary32; times device ns (i64).
//
//   offset 0   8 bytes  magic 53 46 53 45 53 53 00 01 ("SFSESS" \0 \1)
//   offset 8   u32      version = 1
//   offset 12  u32      number of sections
//   offset 16  sections, back to back, to the end of the file; each:
//                char tag[4]; u32 crc32(data); u64 length L; u8 data[L]
//              CRC-32 is ISO-HDLC (zlib/PNG): reflected poly 0xEDB88320, init/xorout 0xFFFFFFFF
//              (core/checksum.h).
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
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <span>
#include <stdexcept>

#include "core/byte_io.h"
#include "core/checksum.h"
#include "core/file_check.h"
#include "replay/mat_session_reader.h"
#include "replay/nwb_session_reader.h"

namespace spikeflow::replay {
namespace {

constexpr std::array<char, 8> kMagic{'S', 'F', 'S', 'E', 'S', 'S', '\0', '\1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 16;
constexpr size_t kSectionHeaderBytes = 16;

using core::ByteReader;
using core::ByteWriter;

// A bounds-checked reader over one section (or header) whose short reads throw with the file,
// section and what was being read.
class SectionReader {
 public:
  SectionReader(std::span<const uint8_t> bytes, std::string where)
      : r_(bytes), where_(std::move(where)) {}

  template <core::LeScalar T>
  T get(const char* what) {
    const T v = r_.read<T>();
    if (!r_.ok()) fail(std::string("truncated ") + what);
    return v;
  }
  /// Resizes out to count values and fills it; checks the size before allocating, so a damaged
  /// count cannot ask for more memory than the section holds.
  template <core::LeScalar T>
  void get_array(std::vector<T>& out, size_t count, const char* what) {
    if (count > r_.remaining() / sizeof(T)) fail(std::string("truncated ") + what);
    out.resize(count);
    r_.read_array<T>(out);
  }
  /// Fails unless the section holds at least count items of min_bytes_each: checked before a
  /// vector is sized from a count read from the file (a damaged count must not allocate).
  void need_items(uint64_t count, size_t min_bytes_each, const char* what) const {
    if (count > r_.remaining() / min_bytes_each) fail(std::string("truncated ") + what);
  }
  std::string get_string(size_t len, const char* what) {
    const std::string_view s = r_.chars(len);
    if (!r_.ok()) fail(std::string("truncated ") + what);
    return std::string(s);
  }
  void expect_end() {
    if (r_.remaining() != 0) fail(std::to_string(r_.remaining()) + " unexpected extra bytes");
  }
  [[noreturn]] void fail(const std::string& msg) const {
    throw std::runtime_error(where_ + ": " + msg);
  }

 private:
  ByteReader r_;
  std::string where_;
};

void append_section(ByteWriter& file, const char (&tag)[5], const std::vector<uint8_t>& data) {
  file.write_chars({tag, 4});
  file.write<uint32_t>(core::crc32(data));
  file.write<uint64_t>(data.size());
  file.write_bytes(data);
}

std::vector<uint8_t> encode(const Session& s) {
  std::vector<uint8_t> out;
  ByteWriter file(out);
  file.write_chars({kMagic.data(), kMagic.size()});
  file.write<uint32_t>(kVersion);
  file.write<uint32_t>(6);

  const auto num_units = static_cast<uint32_t>(s.units.size());
  const auto dim = static_cast<uint32_t>(s.behavior_names.size());
  std::vector<uint8_t> data;
  ByteWriter w(data);
  w.write<int64_t>(s.start_ns);
  w.write<int64_t>(s.end_ns);
  w.write<uint32_t>(num_units);
  w.write<uint32_t>(dim);
  w.write<uint64_t>(s.behavior_t_ns.size());
  w.write<uint32_t>(static_cast<uint32_t>(s.trials.size()));
  w.write<uint32_t>(0);
  append_section(file, "META", data);

  data.clear();
  for (const auto& u : s.units) {
    w.write<uint32_t>(u.channel);
    w.write<uint16_t>(u.unit);
    w.write<uint16_t>(0);
  }
  append_section(file, "UNIT", data);

  data.clear();
  for (const auto& t : s.spike_times_ns) w.write<uint64_t>(t.size());
  for (const auto& t : s.spike_times_ns) w.write_array<int64_t>(t);
  append_section(file, "SPIK", data);

  data.clear();
  for (const auto& n : s.behavior_names) {
    w.write<uint32_t>(static_cast<uint32_t>(n.size()));
    w.write_chars(n);
  }
  append_section(file, "BNAM", data);

  data.clear();
  w.write_array<int64_t>(s.behavior_t_ns);
  w.write_array<float>(s.behavior);
  append_section(file, "BEHV", data);

  data.clear();
  for (const auto& t : s.trials) {
    w.write<int64_t>(t.start_ns);
    w.write<int64_t>(t.end_ns);
    w.write<int32_t>(t.condition);
    w.write<uint32_t>(0);
  }
  append_section(file, "TRIL", data);
  return out;
}

std::vector<uint8_t> read_all(const std::string& path) {
  core::check_input_file(path, "session file");
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

struct Section {
  std::string tag;
  std::span<const uint8_t> data;
};

/// Checks the file header and splits the rest into sections, checking every length and CRC
/// before anything is interpreted. `file` names the file in errors.
std::vector<Section> split_sections(std::span<const uint8_t> bytes, const std::string& file) {
  if (bytes.size() < kMagic.size() ||
      !std::equal(kMagic.begin(), kMagic.end(), reinterpret_cast<const char*>(bytes.data()))) {
    throw std::runtime_error(file + ": wrong magic (not a spikeflow .sfs file)");
  }
  if (bytes.size() < kHeaderBytes) {
    throw std::runtime_error(file + ": truncated header (" + std::to_string(bytes.size()) +
                             " bytes)");
  }
  SectionReader header(bytes.subspan(kMagic.size(), kHeaderBytes - kMagic.size()), file);
  const auto version = header.get<uint32_t>("version");
  if (version != kVersion) {
    throw std::runtime_error(file + ": unsupported version " + std::to_string(version) +
                             " (this build reads version " + std::to_string(kVersion) + ")");
  }
  const auto num_sections = header.get<uint32_t>("section count");

  std::vector<Section> sections;
  size_t pos = kHeaderBytes;
  for (uint32_t i = 0; i < num_sections; ++i) {
    if (bytes.size() - pos < kSectionHeaderBytes) {
      throw std::runtime_error(file + ": truncated: section " + std::to_string(i) + " of " +
                               std::to_string(num_sections) + " is missing or cut short");
    }
    SectionReader sh(bytes.subspan(pos, kSectionHeaderBytes), file);
    std::string tag = sh.get_string(4, "section tag");
    const auto crc = sh.get<uint32_t>("section crc");
    const auto len = sh.get<uint64_t>("section length");
    pos += kSectionHeaderBytes;
    if (len > bytes.size() - pos) {
      throw std::runtime_error(file + ": truncated: section '" + tag + "' declares " +
                               std::to_string(len) + " bytes but only " +
                               std::to_string(bytes.size() - pos) + " remain");
    }
    const auto data = bytes.subspan(pos, static_cast<size_t>(len));
    if (core::crc32(data) != crc) {
      throw std::runtime_error(file + ": corrupt: checksum mismatch in section '" + tag + "'");
    }
    sections.push_back({std::move(tag), data});
    pos += data.size();
  }
  if (pos != bytes.size()) {
    throw std::runtime_error(file + ": " + std::to_string(bytes.size() - pos) +
                             " unexpected bytes after the last section");
  }
  return sections;
}

/// A reader over the one section tagged `tag`; throws when it is missing or appears twice.
SectionReader find_section(const std::vector<Section>& sections, const char* tag,
                           const std::string& file) {
  const Section* found = nullptr;
  for (const auto& s : sections) {
    if (s.tag == tag) {
      if (found) throw std::runtime_error(file + ": section '" + tag + "' appears twice");
      found = &s;
    }
  }
  if (!found) throw std::runtime_error(file + ": missing section '" + tag + "'");
  return SectionReader(found->data, file + ", section '" + tag + "'");
}

/// The counts META declares, which size every other section.
struct Meta {
  uint32_t num_units = 0;
  uint32_t dim = 0;
  uint64_t num_samples = 0;
  uint32_t num_trials = 0;
};

Meta decode_meta(SectionReader meta, Session& s) {
  Meta m;
  s.start_ns = meta.get<int64_t>("start_ns");
  s.end_ns = meta.get<int64_t>("end_ns");
  m.num_units = meta.get<uint32_t>("num_units");
  m.dim = meta.get<uint32_t>("behavior_dim");
  m.num_samples = meta.get<uint64_t>("num_behavior_samples");
  m.num_trials = meta.get<uint32_t>("num_trials");
  meta.get<uint32_t>("reserved");
  meta.expect_end();
  return m;
}

Session decode(const std::vector<uint8_t>& bytes, const std::string& path) {
  const std::string file = path + ": session file";
  const std::vector<Section> sections = split_sections(bytes, file);
  auto find = [&](const char* tag) { return find_section(sections, tag, file); };

  Session s;
  const Meta m = decode_meta(find("META"), s);

  SectionReader unit = find("UNIT");
  unit.need_items(m.num_units, 8, "units");
  s.units.resize(m.num_units);
  for (auto& u : s.units) {
    u.channel = unit.get<uint32_t>("unit channel");
    u.unit = unit.get<uint16_t>("unit code");
    unit.get<uint16_t>("unit reserved");
  }
  unit.expect_end();

  SectionReader spik = find("SPIK");
  std::vector<uint64_t> counts;
  spik.get_array(counts, m.num_units, "spike counts");
  s.spike_times_ns.resize(m.num_units);
  for (uint32_t u = 0; u < m.num_units; ++u) {
    spik.get_array(s.spike_times_ns[u], counts[u], "spike times");
  }
  spik.expect_end();

  SectionReader bnam = find("BNAM");
  bnam.need_items(m.dim, 4, "behaviour names");
  s.behavior_names.resize(m.dim);
  for (auto& n : s.behavior_names) {
    const auto len = bnam.get<uint32_t>("behaviour name length");
    n = bnam.get_string(len, "behaviour name");
  }
  bnam.expect_end();

  SectionReader behv = find("BEHV");
  behv.get_array(s.behavior_t_ns, static_cast<size_t>(m.num_samples), "behaviour times");
  if (m.dim != 0 && m.num_samples > SIZE_MAX / m.dim) behv.fail("behaviour size overflows");
  behv.get_array(s.behavior, static_cast<size_t>(m.num_samples) * m.dim, "behaviour values");
  behv.expect_end();

  SectionReader tril = find("TRIL");
  tril.need_items(m.num_trials, 24, "trials");
  s.trials.resize(m.num_trials);
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

Session read_session_file(const std::string& path) {
  return core::as_input_file_error([&] { return decode(read_all(path), path); });
}

Session load_session(const std::string& path) { return load_session(path, NwbReadOptions{}); }

Session load_session(const std::string& path, const NwbReadOptions& nwb) {
  core::check_input_file(path, "session file");
  // Content first (magic bytes), extension second, so a renamed file still loads and a misnamed
  // one is reported as what it is.
  const std::string ext = lower_extension(path);
  switch (core::sniff_file(path)) {
    case core::FileFormat::kSessionFile:
      return read_session_file(path);
    // MAT v5 and v7.3 (HDF5 behind a 512-byte text header) both go to libmatio.
    case core::FileFormat::kMatV5:
    case core::FileFormat::kMatV73:
      return read_mat_session(path, MatReadOptions{});
    // HDF5 at offset 0, without MATLAB's header. Named .mat: read_mat_session says what it is.
    // Otherwise NWB 2.x, read with nwb (by default: behaviour TimeSeries "hand_vel" under
    // /processing/behavior, trials from /intervals/trials).
    case core::FileFormat::kHdf5:
      if (ext == ".mat") return read_mat_session(path, MatReadOptions{});
      return read_nwb_session(path, nwb);
    case core::FileFormat::kRecording:
      throw core::InputFileError(
          path + ": is a spikeflow recording, not a session (pass it with --recording)");
    case core::FileFormat::kCheckpoint:
      throw core::InputFileError(
          path + ": is a spikeflow checkpoint, not a session (pass it with --checkpoint)");
    case core::FileFormat::kUnknown:
      break;
  }
  if (ext == ".sfs") return read_session_file(path);  // reports the wrong magic
  if (ext == ".mat")
    return read_mat_session(path, MatReadOptions{});      // MAT v4 has no header to sniff
  if (ext == ".nwb") return read_nwb_session(path, nwb);  // reports "not an HDF5 file"
  throw core::InputFileError(path +
                             ": unsupported session format (expected a .sfs session file, "
                             "a .mat TrialData file or a .nwb NWB 2.x file)");
}

}  // namespace spikeflow::replay
