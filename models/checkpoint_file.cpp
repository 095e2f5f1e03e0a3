#include "models/checkpoint_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <span>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "core/byte_io.h"
#include "core/checksum.h"
#include "core/file_check.h"

namespace spikeflow::models {
namespace {

constexpr char kMagic[8] = {'S', 'P', 'K', 'F', 'L', 'W', 'C', 'K'};

void write_str(core::ByteWriter& out, const std::string& s) {
  out.write<uint32_t>(static_cast<uint32_t>(s.size()));
  out.write_chars(s);
}

// Bounds-checked reads that throw: running past the end means the content disagrees with its own
// sizes.
class Reader {
 public:
  explicit Reader(std::span<const uint8_t> bytes) : r_(bytes) {}
  template <core::LeScalar T>
  T get() {
    const T v = r_.read<T>();
    check();
    return v;
  }
  std::string get_bytes(uint64_t n) {
    if (n > r_.remaining()) r_.fail();
    const std::string_view s = r_.chars(static_cast<size_t>(n));
    check();
    return std::string(s);
  }
  std::string get_str() { return get_bytes(get<uint32_t>()); }
  bool done() const { return r_.done(); }

 private:
  void check() const {
    if (!r_.ok())
      throw std::runtime_error("corrupt (a length field points past the end of the data)");
  }
  core::ByteReader r_;
};

std::string fmt_double(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  size_t start = 0;
  while (true) {
    size_t p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

double parse_double(const std::string& key, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE) {
    throw std::runtime_error("metadata key '" + key + "' is not a number: '" + s + "'");
  }
  return v;
}

int64_t parse_int(const std::string& key, const std::string& s) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || end != s.c_str() + s.size() || errno == ERANGE) {
    throw std::runtime_error("metadata key '" + key + "' is not an integer: '" + s + "'");
  }
  return v;
}

}  // namespace

void CheckpointFile::write(const std::string& path) const {
  std::vector<uint8_t> out;
  core::ByteWriter w(out);
  w.write_chars({kMagic, sizeof kMagic});
  w.write<uint32_t>(kContainerVersion);
  const size_t total_pos = w.size();
  w.write<uint64_t>(0);  // total size, patched below
  write_str(w, kind);
  w.write<uint32_t>(kind_version);
  w.write<uint32_t>(static_cast<uint32_t>(meta.size()));
  for (const auto& [k, v] : meta) {
    write_str(w, k);
    write_str(w, v);
  }
  w.write<uint64_t>(payload.size());
  w.write_chars(payload);
  w.patch<uint64_t>(total_pos, w.size() + sizeof(uint64_t));
  w.write<uint64_t>(core::fnv1a64(out));

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) {
      throw std::runtime_error("checkpoint '" + path + "': cannot open '" + tmp +
                               "' for writing: " + std::strerror(errno));
    }
    f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
    f.flush();
    if (!f) {
      std::remove(tmp.c_str());
      throw std::runtime_error("checkpoint '" + path + "': write to '" + tmp + "' failed");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = std::strerror(errno);
    std::remove(tmp.c_str());
    throw std::runtime_error("checkpoint '" + path + "': cannot rename '" + tmp +
                             "' into place: " + err);
  }
}

CheckpointFile CheckpointFile::read(const std::string& path) {
  // Every failure here is the file's (exit code "input file"); the metadata getters' errors are
  // not.
  auto fail = [&](const std::string& what) {
    return core::InputFileError("checkpoint '" + path + "': " + what);
  };
  if (auto problem = core::input_file_problem(path, "checkpoint file")) throw fail(*problem);
  std::ifstream f(path, std::ios::binary);
  if (!f) throw fail(std::string("cannot open (") + std::strerror(errno) + ")");
  const std::vector<uint8_t> data((std::istreambuf_iterator<char>(f)),
                                  std::istreambuf_iterator<char>());
  if (f.bad()) throw fail("read error");

  constexpr size_t kHeader = sizeof kMagic + 4 + 8;
  if (data.size() < sizeof kMagic || std::memcmp(data.data(), kMagic, sizeof kMagic) != 0) {
    // An empty file is truncated too (and its data() may be null, which memcmp must not get).
    if (data.size() < sizeof kMagic &&
        (data.empty() || std::memcmp(data.data(), kMagic, data.size()) == 0)) {
      throw fail("truncated (" + std::to_string(data.size()) + " bytes)");
    }
    const core::FileFormat is = core::sniff_format(data);
    if (is != core::FileFormat::kUnknown) {
      throw fail("not a spikeflow checkpoint: it is " + std::string(core::describe(is)));
    }
    throw fail("not a spikeflow checkpoint (bad magic)");
  }
  if (data.size() < kHeader) throw fail("truncated (" + std::to_string(data.size()) + " bytes)");
  const std::span<const uint8_t> bytes(data);
  try {
    Reader header(bytes.subspan(sizeof kMagic));
    const uint32_t version = header.get<uint32_t>();
    const uint64_t total = header.get<uint64_t>();
    if (version != kContainerVersion) {
      throw fail("unsupported container version " + std::to_string(version) +
                 " (this build reads " + std::to_string(kContainerVersion) + ")");
    }
    if (data.size() < total) {
      throw fail("truncated (file is " + std::to_string(data.size()) + " bytes, header says " +
                 std::to_string(total) + ")");
    }
    if (data.size() > total) {
      throw fail("corrupt (file is " + std::to_string(data.size()) + " bytes, header says " +
                 std::to_string(total) + ")");
    }
    if (total < kHeader + 8) throw fail("corrupt (impossible total size)");
    const auto body = bytes.first(data.size() - 8);
    const uint64_t stored = core::load_le<uint64_t>(bytes.last(8).data());
    if (stored != core::fnv1a64(body)) throw fail("corrupt (checksum mismatch)");

    CheckpointFile ck;
    Reader r(body.subspan(kHeader));
    ck.kind = r.get_str();
    ck.kind_version = r.get<uint32_t>();
    const uint32_t n = r.get<uint32_t>();
    for (uint32_t i = 0; i < n; ++i) {
      std::string k = r.get_str();
      ck.meta[k] = r.get_str();
    }
    ck.payload = r.get_bytes(r.get<uint64_t>());
    if (!r.done()) throw fail("corrupt (unexpected bytes after the payload)");
    return ck;
  } catch (const core::InputFileError&) {
    throw;
  } catch (const std::runtime_error& e) {
    throw fail(e.what());
  }
}

std::string checkpoint_kind(const std::string& path) { return CheckpointFile::read(path).kind; }

void CheckpointFile::set_int(const std::string& key, int64_t value) {
  meta[key] = std::to_string(value);
}
void CheckpointFile::set_double(const std::string& key, double value) {
  meta[key] = fmt_double(value);
}

void CheckpointFile::set_floats(const std::string& key, const std::vector<float>& values) {
  std::string s;
  char buf[32];
  for (size_t i = 0; i < values.size(); ++i) {
    std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(values[i]));
    if (i) s.push_back(',');
    s += buf;
  }
  meta[key] = s;
}

void CheckpointFile::set_units(const std::string& key, const std::vector<core::UnitKey>& units) {
  std::string s;
  for (size_t i = 0; i < units.size(); ++i) {
    if (i) s.push_back(',');
    s += std::to_string(units[i].channel) + ":" + std::to_string(units[i].unit);
  }
  meta[key] = s;
}

void CheckpointFile::set_strings(const std::string& key, const std::vector<std::string>& values) {
  std::string s;
  for (size_t i = 0; i < values.size(); ++i) {
    if (values[i].find(',') != std::string::npos) {
      throw std::invalid_argument("metadata key '" + key + "': value contains ','");
    }
    if (i) s.push_back(',');
    s += values[i];
  }
  meta[key] = s;
}

const std::string& CheckpointFile::get_string(const std::string& key) const {
  auto it = meta.find(key);
  if (it == meta.end()) throw std::runtime_error("metadata key '" + key + "' missing");
  return it->second;
}

int64_t CheckpointFile::get_int(const std::string& key) const {
  return parse_int(key, get_string(key));
}
double CheckpointFile::get_double(const std::string& key) const {
  return parse_double(key, get_string(key));
}

std::vector<float> CheckpointFile::get_floats(const std::string& key) const {
  std::vector<float> out;
  for (const auto& p : split(get_string(key), ','))
    out.push_back(static_cast<float>(parse_double(key, p)));
  return out;
}

std::vector<core::UnitKey> CheckpointFile::get_units(const std::string& key) const {
  std::vector<core::UnitKey> out;
  for (const auto& p : split(get_string(key), ',')) {
    const auto parts = split(p, ':');
    if (parts.size() != 2)
      throw std::runtime_error("metadata key '" + key + "': bad unit '" + p + "'");
    const int64_t ch = parse_int(key, parts[0]);
    const int64_t u = parse_int(key, parts[1]);
    if (ch < 0 || ch > core::UnitMap::kMaxChannel || u < 0 || u > core::UnitMap::kMaxUnitCode) {
      throw std::runtime_error("metadata key '" + key + "': unit out of range '" + p + "'");
    }
    out.push_back({static_cast<uint32_t>(ch), static_cast<uint16_t>(u)});
  }
  return out;
}

std::vector<std::string> CheckpointFile::get_strings(const std::string& key) const {
  return split(get_string(key), ',');
}

}  // namespace spikeflow::models
