// Recording file (.sfrec), version 1 — byte layout in replay/RECORDING_FORMAT.md.
// All integers little-endian; floats IEEE-754 binary32; CRC-32 ISO-HDLC (replay/crc32.h).
//
//   header (40 bytes): magic "SFREC\0\0\1"; u32 version = 1; u32 header_bytes = 40;
//                      i64 created_unix_ns; i64 created_host_ns; u32 reserved = 0;
//                      u32 crc32(header bytes 0..35)
//   records, back to back to the end of the file:
//                      u32 type; u32 payload_length L; u8 payload[L]; u32 crc32(type, L, payload)
#include "replay/recording_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "core/time.h"
#include "replay/crc32.h"

namespace spikeflow::replay {
namespace {

constexpr std::array<char, 8> kMagic{'S', 'F', 'R', 'E', 'C', '\0', '\0', '\1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 40;
constexpr size_t kFrameBytes = 12;  // type + length + crc
/// Larger payloads are refused by the writer and read as corruption (a damaged length field).
constexpr uint32_t kMaxPayloadBytes = 64u << 20;

constexpr size_t kEventsFixed = 24;
constexpr size_t kEventBytes = 16;
constexpr size_t kPredictionFixed = 88;
constexpr size_t kEndBytes = 48;

// Little-endian field encoding at a cursor (no bounds checks: callers size the frame first).
template <typename T>
void put(uint8_t*& p, T v) noexcept {
  static_assert(std::is_trivially_copyable_v<T>);
  std::memcpy(p, &v, sizeof(T));
  if constexpr (std::endian::native == std::endian::big) std::reverse(p, p + sizeof(T));
  p += sizeof(T);
}

template <typename T>
T get_at(const uint8_t* p) noexcept {
  std::array<uint8_t, sizeof(T)> b;
  std::memcpy(b.data(), p, sizeof(T));
  if constexpr (std::endian::native == std::endian::big) std::reverse(b.begin(), b.end());
  T v;
  std::memcpy(&v, b.data(), sizeof(T));
  return v;
}

// Bounds-checked decoder over one record's payload; a short read marks the record malformed.
class PayloadReader {
 public:
  PayloadReader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  template <typename T>
  T get() {
    if (sizeof(T) > n_ - pos_) {
      ok_ = false;
      return T{};
    }
    const T v = get_at<T>(p_ + pos_);
    pos_ += sizeof(T);
    return v;
  }
  std::string get_string(size_t len) {
    if (len > n_ - pos_) {
      ok_ = false;
      return {};
    }
    std::string s(reinterpret_cast<const char*>(p_ + pos_), len);
    pos_ += len;
    return s;
  }
  void invalidate() { ok_ = false; }
  bool ok_and_done() const { return ok_ && pos_ == n_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  bool ok_ = true;
};

int64_t unix_now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Writer

RecordingWriter::RecordingWriter(size_t buffer_bytes)
    : buffer_(std::max(buffer_bytes, kHeaderBytes + kFrameBytes + kPredictionFixed + 64)) {}

RecordingWriter::~RecordingWriter() { finish_fd(/*write_end=*/false); }

void RecordingWriter::open(const std::string& path) {
  if (fd_ >= 0) throw std::runtime_error(path + ": recording writer already open on " + path_);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw std::runtime_error(path + ": cannot create recording file: " + std::strerror(errno));
  }
  fd_ = fd;
  path_ = path;
  error_.clear();
  counters_ = RecordingCounters{};
  used_ = 0;

  uint8_t* p = buffer_.data();
  std::memcpy(p, kMagic.data(), kMagic.size());
  p += kMagic.size();
  put<uint32_t>(p, kVersion);
  put<uint32_t>(p, static_cast<uint32_t>(kHeaderBytes));
  put<int64_t>(p, unix_now_ns());
  put<int64_t>(p, core::host_now_ns());
  put<uint32_t>(p, 0);
  put<uint32_t>(p, crc32(buffer_.data(), kHeaderBytes - 4));
  used_ = kHeaderBytes;  // goes out with the first flush, like every record
}

void RecordingWriter::fail(const char* what, int err) noexcept {
  ++counters_.io_errors;
  if (!error_.empty()) return;
  try {
    error_ = path_ + ": " + what + ": " + std::strerror(err);
  } catch (...) {
    // Out of memory while formatting the message: the io_errors counter still tells.
  }
}

bool RecordingWriter::write_fd(const uint8_t* data, size_t n) noexcept {
  while (n > 0) {
    const ssize_t w = ::write(fd_, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("write failed", errno);
      return false;
    }
    counters_.bytes_written += static_cast<uint64_t>(w);
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool RecordingWriter::flush() noexcept {
  if (fd_ < 0 || used_ == 0) return ok();
  if (ok()) write_fd(buffer_.data(), used_);
  if (!ok()) counters_.records_dropped += records_buffered_;
  used_ = 0;
  records_buffered_ = 0;
  return ok();
}

uint8_t* RecordingWriter::begin_record(RecordType type, size_t payload_bytes) noexcept {
  if (fd_ < 0 || !ok() || payload_bytes > kMaxPayloadBytes) {
    ++counters_.records_dropped;
    return nullptr;
  }
  const size_t total = kFrameBytes + payload_bytes;
  if (total > buffer_.size() - used_ && !flush()) {
    ++counters_.records_dropped;
    return nullptr;
  }
  uint8_t* base = nullptr;
  if (total > buffer_.size()) {
    // Rare (a packet of >65k events with the default buffer): a one-off staging buffer.
    try {
      oversize_.resize(total);
    } catch (...) {
      ++counters_.records_dropped;
      return nullptr;
    }
    base = oversize_.data();
    in_oversize_ = true;
  } else {
    record_begin_ = used_;
    base = buffer_.data() + used_;
    in_oversize_ = false;
  }
  pending_bytes_ = total;
  uint8_t* p = base;
  put<uint32_t>(p, static_cast<uint32_t>(type));
  put<uint32_t>(p, static_cast<uint32_t>(payload_bytes));
  return p;
}

bool RecordingWriter::commit() noexcept {
  uint8_t* base = in_oversize_ ? oversize_.data() : buffer_.data() + record_begin_;
  uint8_t* crc_at = base + pending_bytes_ - 4;
  put<uint32_t>(crc_at, crc32(base, pending_bytes_ - 4));
  if (in_oversize_) {
    if (!write_fd(base, pending_bytes_)) {
      ++counters_.records_dropped;
      return false;
    }
  } else {
    used_ += pending_bytes_;
    ++records_buffered_;
  }
  return true;
}

bool RecordingWriter::write_config(const std::string& config_text) noexcept {
  uint8_t* p = begin_record(RecordType::kConfig, config_text.size());
  if (!p) return false;
  std::memcpy(p, config_text.data(), config_text.size());
  if (!commit()) return false;
  ++counters_.records;
  return true;
}

bool RecordingWriter::write_model(const std::string& description,
                                  const std::string& identity) noexcept {
  uint8_t* p = begin_record(RecordType::kModel, 8 + description.size() + identity.size());
  if (!p) return false;
  put<uint32_t>(p, static_cast<uint32_t>(description.size()));
  std::memcpy(p, description.data(), description.size());
  p += description.size();
  put<uint32_t>(p, static_cast<uint32_t>(identity.size()));
  std::memcpy(p, identity.data(), identity.size());
  if (!commit()) return false;
  ++counters_.records;
  return true;
}

bool RecordingWriter::write_units(const std::vector<core::UnitKey>& units) noexcept {
  uint8_t* p = begin_record(RecordType::kUnits, 4 + 8 * units.size());
  if (!p) return false;
  put<uint32_t>(p, static_cast<uint32_t>(units.size()));
  for (const auto& u : units) {
    put<uint32_t>(p, u.channel);
    put<uint16_t>(p, u.unit);
    put<uint16_t>(p, 0);
  }
  if (!commit()) return false;
  ++counters_.records;
  return true;
}

bool RecordingWriter::write_events(const core::EventBatch& batch) noexcept {
  uint8_t* p = begin_record(RecordType::kEvents, kEventsFixed + kEventBytes * batch.events.size());
  if (!p) return false;
  put<int64_t>(p, batch.arrival_host_ns);
  put<int64_t>(p, batch.device_time_ns);
  put<uint32_t>(p, static_cast<uint32_t>(batch.events.size()));
  put<uint32_t>(p, 0);
  for (const auto& e : batch.events) {
    put<int64_t>(p, e.t_ns);
    put<uint32_t>(p, e.channel);
    put<uint16_t>(p, e.unit);
    put<uint16_t>(p, e.reserved);
  }
  if (!commit()) return false;
  ++counters_.records;
  ++counters_.event_records;
  counters_.events += batch.events.size();
  return true;
}

bool RecordingWriter::write_prediction(const core::Prediction& pr) noexcept {
  const int dim = std::clamp(pr.output_dim, 0, core::kMaxOutputDim);
  uint8_t* p = begin_record(RecordType::kPrediction, kPredictionFixed + 4 * static_cast<size_t>(dim));
  if (!p) return false;
  put<int64_t>(p, pr.seq);
  put<int64_t>(p, pr.start_ns);
  put<int64_t>(p, pr.end_ns);
  put<uint32_t>(p, pr.flags);
  put<uint32_t>(p, pr.n_tokens);
  put<uint32_t>(p, static_cast<uint32_t>(dim));
  put<uint32_t>(p, 0);
  const core::ChunkTiming& t = pr.timing;
  for (int64_t v : {t.trigger_arrival_ns, t.close_ns, t.tokenize_ns, t.decode_start_ns,
                    t.decode_end_ns, t.publish_ns}) {
    put<int64_t>(p, v);
  }
  for (int d = 0; d < dim; ++d) put<float>(p, pr.values[static_cast<size_t>(d)]);
  if (!commit()) return false;
  ++counters_.records;
  ++counters_.prediction_records;
  return true;
}

bool RecordingWriter::finish_fd(bool write_end) noexcept {
  if (fd_ < 0) return true;
  if (write_end) {
    if (uint8_t* p = begin_record(RecordType::kEnd, kEndBytes)) {
      put<int64_t>(p, unix_now_ns());
      put<uint64_t>(p, counters_.event_records);
      put<uint64_t>(p, counters_.events);
      put<uint64_t>(p, counters_.prediction_records);
      put<uint64_t>(p, counters_.records);
      put<uint64_t>(p, counters_.records_dropped);
      commit();
    }
  }
  flush();
  if (write_end && ok() && ::fsync(fd_) != 0) fail("fsync failed", errno);
  if (::close(fd_) != 0) fail("close failed", errno);
  fd_ = -1;
  return ok();
}

bool RecordingWriter::close() noexcept { return finish_fd(/*write_end=*/true); }

// ---------------------------------------------------------------------------------------------
// Reader

Recording read_recording(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw std::runtime_error(path + ": no such recording file");
  }
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error(path + ": cannot determine file size: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open recording for reading");
  const std::string file = path + ": recording";

  std::array<uint8_t, kHeaderBytes> header{};
  in.read(reinterpret_cast<char*>(header.data()), static_cast<std::streamsize>(header.size()));
  const auto got = static_cast<size_t>(in.gcount());
  if (got < kMagic.size() || !std::equal(kMagic.begin(), kMagic.end(),
                                         reinterpret_cast<const char*>(header.data()))) {
    throw std::runtime_error(file + ": wrong magic (not a spikeflow recording)");
  }
  if (got < kHeaderBytes) {
    throw std::runtime_error(file + ": truncated header (" + std::to_string(got) + " of " +
                             std::to_string(kHeaderBytes) + " bytes)");
  }
  Recording r;
  r.version = get_at<uint32_t>(header.data() + 8);
  if (r.version != kVersion) {
    throw std::runtime_error(file + ": unsupported version " + std::to_string(r.version) +
                             " (this build reads version " + std::to_string(kVersion) + ")");
  }
  if (get_at<uint32_t>(header.data() + 36) != crc32(header.data(), kHeaderBytes - 4) ||
      get_at<uint32_t>(header.data() + 12) != kHeaderBytes) {
    throw std::runtime_error(file + ": corrupt header (checksum or size mismatch)");
  }
  r.created_unix_ns = get_at<int64_t>(header.data() + 16);
  r.created_host_ns = get_at<int64_t>(header.data() + 24);

  uint64_t offset = kHeaderBytes;
  r.bytes_read = offset;
  std::vector<uint8_t> rec;
  bool end_seen = false;
  auto stop = [&](bool corrupt, const std::string& why) {
    r.corrupt = corrupt;
    r.truncated = !corrupt;
    r.bytes_lost = file_size - offset;
    r.problem = file + ": " + why + " at byte offset " + std::to_string(offset) + "; " +
                std::to_string(r.records) + " records before it were read, " +
                std::to_string(r.bytes_lost) + " bytes from there on were not";
  };
  while (offset < file_size) {
    const uint64_t remaining = file_size - offset;
    if (remaining < 8) {
      stop(false, "file ends inside a record header (truncated)");
      break;
    }
    rec.resize(8);
    in.read(reinterpret_cast<char*>(rec.data()), 8);
    if (!in) {
      stop(true, "read error");
      break;
    }
    const auto type = get_at<uint32_t>(rec.data());
    const auto len = get_at<uint32_t>(rec.data() + 4);
    if (len > kMaxPayloadBytes) {
      stop(true, "corrupt record: implausible payload length " + std::to_string(len));
      break;
    }
    if (remaining < kFrameBytes + len) {
      stop(false, "file ends inside a record of " + std::to_string(kFrameBytes + len) +
                      " bytes (truncated)");
      break;
    }
    rec.resize(kFrameBytes + len);
    in.read(reinterpret_cast<char*>(rec.data() + 8), static_cast<std::streamsize>(len + 4));
    if (!in) {
      stop(true, "read error");
      break;
    }
    if (get_at<uint32_t>(rec.data() + 8 + len) != crc32(rec.data(), 8 + len)) {
      // A bad last record is what a crash mid-write leaves; one with records after it is damage.
      const bool last = remaining == kFrameBytes + len;
      stop(!last, last ? "last record fails its checksum (torn write)"
                       : "corrupt record (checksum mismatch)");
      break;
    }
    PayloadReader p(rec.data() + 8, len);
    bool known = true;
    switch (static_cast<RecordType>(type)) {
      // Each case changes r only once its record decoded whole: a malformed record stops reading
      // and must leave no trace (reading stops "before it").
      case RecordType::kConfig:
        r.config = p.get_string(len);
        break;
      case RecordType::kModel: {
        std::string model = p.get_string(p.get<uint32_t>());
        std::string identity = p.get_string(p.get<uint32_t>());
        if (p.ok_and_done()) {
          r.model = std::move(model);
          r.model_identity = std::move(identity);
        }
        break;
      }
      case RecordType::kUnits: {
        const auto n = p.get<uint32_t>();
        if (static_cast<uint64_t>(n) * 8 + 4 != len) {
          p.invalidate();
          break;
        }
        r.units.resize(n);
        for (auto& u : r.units) {
          u.channel = p.get<uint32_t>();
          u.unit = p.get<uint16_t>();
          p.get<uint16_t>();
        }
        break;
      }
      case RecordType::kEvents: {
        core::EventBatch b;
        b.arrival_host_ns = p.get<int64_t>();
        b.device_time_ns = p.get<int64_t>();
        const auto n = p.get<uint32_t>();
        p.get<uint32_t>();
        if (kEventsFixed + kEventBytes * static_cast<uint64_t>(n) != len) {
          p.invalidate();
          break;
        }
        b.events.resize(n);
        for (auto& e : b.events) {
          e.t_ns = p.get<int64_t>();
          e.channel = p.get<uint32_t>();
          e.unit = p.get<uint16_t>();
          e.reserved = p.get<uint16_t>();
        }
        r.batches.push_back(std::move(b));
        break;
      }
      case RecordType::kPrediction: {
        core::Prediction pr;
        pr.seq = p.get<int64_t>();
        pr.start_ns = p.get<int64_t>();
        pr.end_ns = p.get<int64_t>();
        pr.flags = p.get<uint32_t>();
        pr.n_tokens = p.get<uint32_t>();
        const auto dim = p.get<uint32_t>();
        p.get<uint32_t>();
        if (dim > static_cast<uint32_t>(core::kMaxOutputDim) ||
            kPredictionFixed + 4 * static_cast<uint64_t>(dim) != len) {
          p.invalidate();
          break;
        }
        pr.output_dim = static_cast<int>(dim);
        core::ChunkTiming& t = pr.timing;
        for (int64_t* f : {&t.trigger_arrival_ns, &t.close_ns, &t.tokenize_ns, &t.decode_start_ns,
                           &t.decode_end_ns, &t.publish_ns}) {
          *f = p.get<int64_t>();
        }
        for (uint32_t d = 0; d < dim; ++d) pr.values[d] = p.get<float>();
        r.predictions.push_back(pr);
        break;
      }
      case RecordType::kEnd: {
        p.get<int64_t>();  // closed_unix_ns
        RecordingCounters c;
        c.event_records = p.get<uint64_t>();
        c.events = p.get<uint64_t>();
        c.prediction_records = p.get<uint64_t>();
        c.records = p.get<uint64_t>();
        c.records_dropped = p.get<uint64_t>();
        if (p.ok_and_done()) r.end_counters = c;
        break;
      }
      default:
        known = false;
        ++r.unknown_records;
        break;
    }
    if (known && !p.ok_and_done()) {
      stop(true, "malformed record of type " + std::to_string(type) + " (payload of " +
                     std::to_string(len) + " bytes does not match its contents)");
      break;
    }
    end_seen = static_cast<RecordType>(type) == RecordType::kEnd;
    ++r.records;
    offset += kFrameBytes + len;
    r.bytes_read = offset;
  }
  r.clean_end = end_seen && r.bytes_lost == 0;
  return r;
}

}  // namespace spikeflow::replay
