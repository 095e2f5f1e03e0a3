// Recording file (.sfrec), version 1 — byte layout in replay/RECORDING_FORMAT.md.
// All integers little-endian; floats IEEE-754 binary32; CRC-32 ISO-HDLC (core/checksum.h).
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
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <stdexcept>

#include "core/byte_io.h"
#include "core/checksum.h"
#include "core/file_check.h"
#include "core/time.h"

namespace spikeflow::replay {
namespace {

using core::ByteReader;
using core::load_le;
using core::SpanWriter;

constexpr std::array<char, 8> kMagic{'S', 'F', 'R', 'E', 'C', '\0', '\0', '\1'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 40;
constexpr size_t kFrameBytes = 12;  // type + length + crc
/// Larger payloads are refused by the writer and read as corruption (a damaged length field).
constexpr uint32_t kMaxPayloadBytes = 64u << 20;

constexpr size_t kEventsFixed = 24;
constexpr size_t kEventBytes = 16;
constexpr size_t kPredictionFixed = 88;
constexpr size_t kPredictionV2Fixed = kPredictionFixed + 16;  // + chunk_index, epoch, reserved
constexpr size_t kEndBytes = 48;

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

  const std::span<uint8_t> header(buffer_.data(), kHeaderBytes);
  SpanWriter w(header);
  w.write_chars({kMagic.data(), kMagic.size()});
  w.write<uint32_t>(kVersion);
  w.write<uint32_t>(static_cast<uint32_t>(kHeaderBytes));
  w.write<int64_t>(unix_now_ns());
  w.write<int64_t>(core::host_now_ns());
  w.write<uint32_t>(0);
  w.write<uint32_t>(core::crc32(header.first(kHeaderBytes - 4)));
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

std::optional<SpanWriter> RecordingWriter::begin_record(RecordType type,
                                                        size_t payload_bytes) noexcept {
  if (fd_ < 0 || !ok() || payload_bytes > kMaxPayloadBytes) {
    ++counters_.records_dropped;
    return std::nullopt;
  }
  const size_t total = kFrameBytes + payload_bytes;
  if (total > buffer_.size() - used_ && !flush()) {
    ++counters_.records_dropped;
    return std::nullopt;
  }
  uint8_t* base = nullptr;
  if (total > buffer_.size()) {
    // Rare (a packet of >65k events with the default buffer): a one-off staging buffer.
    try {
      oversize_.resize(total);
    } catch (...) {
      ++counters_.records_dropped;
      return std::nullopt;
    }
    base = oversize_.data();
    in_oversize_ = true;
  } else {
    record_begin_ = used_;
    base = buffer_.data() + used_;
    in_oversize_ = false;
  }
  pending_bytes_ = total;
  SpanWriter frame({base, 8});
  frame.write<uint32_t>(static_cast<uint32_t>(type));
  frame.write<uint32_t>(static_cast<uint32_t>(payload_bytes));
  return SpanWriter({base + 8, payload_bytes});
}

bool RecordingWriter::commit(const SpanWriter& payload) noexcept {
  if (!payload.done()) {
    // The payload written disagrees with the size reserved for it: a bug in a write_*; the
    // record is dropped rather than framed around garbage.
    ++counters_.records_dropped;
    return false;
  }
  uint8_t* base = in_oversize_ ? oversize_.data() : buffer_.data() + record_begin_;
  const std::span<uint8_t> frame(base, pending_bytes_);
  core::store_le<uint32_t>(frame.last(4).data(), core::crc32(frame.first(pending_bytes_ - 4)));
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
  auto w = begin_record(RecordType::kConfig, config_text.size());
  if (!w) return false;
  w->write_chars(config_text);
  if (!commit(*w)) return false;
  ++counters_.records;
  return true;
}

bool RecordingWriter::write_model(const std::string& description,
                                  const std::string& identity) noexcept {
  auto w = begin_record(RecordType::kModel, 8 + description.size() + identity.size());
  if (!w) return false;
  w->write<uint32_t>(static_cast<uint32_t>(description.size()));
  w->write_chars(description);
  w->write<uint32_t>(static_cast<uint32_t>(identity.size()));
  w->write_chars(identity);
  if (!commit(*w)) return false;
  ++counters_.records;
  return true;
}

bool RecordingWriter::write_units(const std::vector<core::UnitKey>& units) noexcept {
  auto w = begin_record(RecordType::kUnits, 4 + 8 * units.size());
  if (!w) return false;
  w->write<uint32_t>(static_cast<uint32_t>(units.size()));
  for (const auto& u : units) {
    w->write<uint32_t>(u.channel);
    w->write<uint16_t>(u.unit);
    w->write<uint16_t>(0);
  }
  if (!commit(*w)) return false;
  ++counters_.records;
  return true;
}

bool RecordingWriter::write_events(const core::EventBatch& batch) noexcept {
  auto w = begin_record(RecordType::kEvents, kEventsFixed + kEventBytes * batch.events.size());
  if (!w) return false;
  w->write<int64_t>(batch.arrival_host_ns);
  w->write<int64_t>(batch.device_time_ns);
  w->write<uint32_t>(static_cast<uint32_t>(batch.events.size()));
  w->write<uint32_t>(0);
  for (const auto& e : batch.events) {
    w->write<int64_t>(e.t_ns);
    w->write<uint32_t>(e.channel);
    w->write<uint16_t>(e.unit);
    w->write<uint16_t>(e.reserved);
  }
  if (!commit(*w)) return false;
  ++counters_.records;
  ++counters_.event_records;
  counters_.events += batch.events.size();
  return true;
}

bool RecordingWriter::write_prediction(const core::Prediction& pr) noexcept {
  const int dim = std::clamp(pr.output_dim, 0, core::kMaxOutputDim);
  auto w =
      begin_record(RecordType::kPredictionV2, kPredictionV2Fixed + 4 * static_cast<size_t>(dim));
  if (!w) return false;
  w->write<int64_t>(pr.seq);
  w->write<int64_t>(pr.start_ns);
  w->write<int64_t>(pr.end_ns);
  w->write<uint32_t>(pr.flags);
  w->write<uint32_t>(pr.n_tokens);
  w->write<uint32_t>(static_cast<uint32_t>(dim));
  w->write<uint32_t>(0);
  const core::ChunkTiming& t = pr.timing;
  for (int64_t v : {t.trigger_arrival_ns, t.close_ns, t.tokenize_ns, t.decode_start_ns,
                    t.decode_end_ns, t.publish_ns}) {
    w->write<int64_t>(v);
  }
  w->write<int64_t>(pr.chunk_index);
  w->write<uint32_t>(pr.epoch);
  w->write<uint32_t>(0);
  for (int d = 0; d < dim; ++d) w->write<float>(pr.values[static_cast<size_t>(d)]);
  if (!commit(*w)) return false;
  ++counters_.records;
  ++counters_.prediction_records;
  return true;
}

bool RecordingWriter::finish_fd(bool write_end) noexcept {
  if (fd_ < 0) return true;
  if (write_end) {
    if (auto w = begin_record(RecordType::kEnd, kEndBytes)) {
      w->write<int64_t>(unix_now_ns());
      w->write<uint64_t>(counters_.event_records);
      w->write<uint64_t>(counters_.events);
      w->write<uint64_t>(counters_.prediction_records);
      w->write<uint64_t>(counters_.records);
      w->write<uint64_t>(counters_.records_dropped);
      commit(*w);
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
// Reader: open the file, check its header, then read frame after frame, decoding each payload,
// until the end of the file or the first record that fails its checks.

namespace {

/// Why reading stopped before the end of the file.
struct ReadStop {
  bool corrupt = false;  ///< false: the file ends early (truncated); true: damage
  std::string why;
};

/// The file's size, and a stream positioned at its start. Throws naming the file.
std::ifstream open_recording(const std::string& path, uint64_t& file_size) {
  core::check_input_file(path, "recording file");
  std::error_code ec;
  file_size = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error(path + ": cannot determine file size: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open recording for reading");
  return in;
}

/// Reads and checks the 40-byte header into r (version, creation times). Throws naming the file
/// (`file`) when it is not a recording, has another version or a damaged header.
void read_header(std::istream& in, const std::string& file, Recording& r) {
  std::array<uint8_t, kHeaderBytes> header{};
  in.read(reinterpret_cast<char*>(header.data()), static_cast<std::streamsize>(header.size()));
  const auto got = static_cast<size_t>(in.gcount());
  if (got < kMagic.size() ||
      !std::equal(kMagic.begin(), kMagic.end(), reinterpret_cast<const char*>(header.data()))) {
    const core::FileFormat is = core::sniff_format(std::span<const uint8_t>(header).first(got));
    if (is != core::FileFormat::kUnknown) {
      throw std::runtime_error(file + ": not a spikeflow recording: it is " +
                               std::string(core::describe(is)));
    }
    throw std::runtime_error(file + ": wrong magic (not a spikeflow recording)");
  }
  if (got < kHeaderBytes) {
    throw std::runtime_error(file + ": truncated header (" + std::to_string(got) + " of " +
                             std::to_string(kHeaderBytes) + " bytes)");
  }
  ByteReader h(std::span<const uint8_t>(header).subspan(kMagic.size()));
  r.version = h.read<uint32_t>();
  if (r.version != kVersion) {
    throw std::runtime_error(file + ": unsupported version " + std::to_string(r.version) +
                             " (this build reads version " + std::to_string(kVersion) + ")");
  }
  const auto header_bytes = h.read<uint32_t>();
  r.created_unix_ns = h.read<int64_t>();
  r.created_host_ns = h.read<int64_t>();
  (void)h.read<uint32_t>();  // reserved
  const auto crc = h.read<uint32_t>();
  if (crc != core::crc32(std::span<const uint8_t>(header).first(kHeaderBytes - 4)) ||
      header_bytes != kHeaderBytes) {
    throw std::runtime_error(file + ": corrupt header (checksum or size mismatch)");
  }
}

/// Reads the next whole record (frame and payload) into rec, `remaining` file bytes being left.
/// Returns why reading must stop instead, when the record is cut short, implausible or fails its
/// CRC.
std::optional<ReadStop> read_frame(std::istream& in, uint64_t remaining,
                                   std::vector<uint8_t>& rec) {
  if (remaining < 8) return ReadStop{false, "file ends inside a record header (truncated)"};
  rec.resize(8);
  in.read(reinterpret_cast<char*>(rec.data()), 8);
  if (!in) return ReadStop{true, "read error"};
  const auto len = load_le<uint32_t>(rec.data() + 4);
  if (len > kMaxPayloadBytes) {
    return ReadStop{true, "corrupt record: implausible payload length " + std::to_string(len)};
  }
  if (remaining < kFrameBytes + len) {
    return ReadStop{false, "file ends inside a record of " + std::to_string(kFrameBytes + len) +
                               " bytes (truncated)"};
  }
  rec.resize(kFrameBytes + len);
  in.read(reinterpret_cast<char*>(rec.data() + 8), static_cast<std::streamsize>(len + 4));
  if (!in) return ReadStop{true, "read error"};
  const std::span<const uint8_t> frame(rec);
  if (load_le<uint32_t>(frame.last(4).data()) != core::crc32(frame.first(8 + len))) {
    // A bad last record is what a crash mid-write leaves; one with records after it is damage.
    const bool last = remaining == kFrameBytes + len;
    return ReadStop{!last, last ? "last record fails its checksum (torn write)"
                                : "corrupt record (checksum mismatch)"};
  }
  return std::nullopt;
}

// Payload decoders, one per record type (layouts in replay/RECORDING_FORMAT.md). Each reads into
// locals and stores into r only when the payload had exactly the size its contents declare;
// otherwise it returns false (a malformed record) and r is untouched.

bool decode_model(ByteReader& p, Recording& r) {
  std::string model(p.chars(p.read<uint32_t>()));
  std::string identity(p.chars(p.read<uint32_t>()));
  if (!p.done()) return false;
  r.model = std::move(model);
  r.model_identity = std::move(identity);
  return true;
}

bool decode_units(ByteReader& p, Recording& r) {
  const auto n = p.read<uint32_t>();
  if (static_cast<uint64_t>(n) * 8 + 4 != p.size()) return false;
  std::vector<core::UnitKey> units(n);
  for (auto& u : units) {
    u.channel = p.read<uint32_t>();
    u.unit = p.read<uint16_t>();
    (void)p.read<uint16_t>();  // reserved
  }
  if (!p.done()) return false;
  r.units = std::move(units);
  return true;
}

bool decode_events(ByteReader& p, Recording& r) {
  core::EventBatch b;
  b.arrival_host_ns = p.read<int64_t>();
  b.device_time_ns = p.read<int64_t>();
  const auto n = p.read<uint32_t>();
  (void)p.read<uint32_t>();  // reserved
  if (kEventsFixed + kEventBytes * static_cast<uint64_t>(n) != p.size()) return false;
  b.events.resize(n);
  for (auto& e : b.events) {
    e.t_ns = p.read<int64_t>();
    e.channel = p.read<uint32_t>();
    e.unit = p.read<uint16_t>();
    e.reserved = p.read<uint16_t>();
  }
  if (!p.done()) return false;
  r.batches.push_back(std::move(b));
  return true;
}

bool decode_prediction(ByteReader& p, Recording& r, bool v2) {
  const size_t fixed = v2 ? kPredictionV2Fixed : kPredictionFixed;
  core::Prediction pr;
  pr.seq = p.read<int64_t>();
  pr.start_ns = p.read<int64_t>();
  pr.end_ns = p.read<int64_t>();
  pr.flags = p.read<uint32_t>();
  pr.n_tokens = p.read<uint32_t>();
  const auto dim = p.read<uint32_t>();
  (void)p.read<uint32_t>();  // reserved
  if (dim > static_cast<uint32_t>(core::kMaxOutputDim) ||
      fixed + 4 * static_cast<uint64_t>(dim) != p.size()) {
    return false;
  }
  pr.output_dim = static_cast<int>(dim);
  core::ChunkTiming& t = pr.timing;
  for (int64_t* f : {&t.trigger_arrival_ns, &t.close_ns, &t.tokenize_ns, &t.decode_start_ns,
                     &t.decode_end_ns, &t.publish_ns}) {
    *f = p.read<int64_t>();
  }
  pr.chunk_index = pr.seq;  // before epochs, seq was the chunk index
  if (v2) {
    pr.chunk_index = p.read<int64_t>();
    pr.epoch = p.read<uint32_t>();
    (void)p.read<uint32_t>();  // reserved
  }
  for (uint32_t d = 0; d < dim; ++d) pr.values[d] = p.read<float>();
  if (!p.done()) return false;
  r.predictions.push_back(pr);
  return true;
}

bool decode_end(ByteReader& p, Recording& r) {
  (void)p.read<int64_t>();  // closed_unix_ns
  RecordingCounters c;
  c.event_records = p.read<uint64_t>();
  c.events = p.read<uint64_t>();
  c.prediction_records = p.read<uint64_t>();
  c.records = p.read<uint64_t>();
  c.records_dropped = p.read<uint64_t>();
  if (!p.done()) return false;
  r.end_counters = c;
  return true;
}

/// Applies one CRC-valid record to r. Types this build does not know are counted and skipped.
/// Returns false when the payload does not match its contents (malformed).
bool apply_record(uint32_t type, std::span<const uint8_t> payload, Recording& r) {
  ByteReader p(payload);
  switch (static_cast<RecordType>(type)) {
    case RecordType::kConfig:
      r.config.assign(p.chars(payload.size()));
      return true;
    case RecordType::kModel:
      return decode_model(p, r);
    case RecordType::kUnits:
      return decode_units(p, r);
    case RecordType::kEvents:
      return decode_events(p, r);
    case RecordType::kPrediction:
      return decode_prediction(p, r, false);
    case RecordType::kPredictionV2:
      return decode_prediction(p, r, true);
    case RecordType::kEnd:
      return decode_end(p, r);
  }
  ++r.unknown_records;
  return true;
}

}  // namespace

Recording read_recording(const std::string& path) {
  uint64_t file_size = 0;
  std::ifstream in = open_recording(path, file_size);
  const std::string file = path + ": recording";
  Recording r;
  core::as_input_file_error([&] { read_header(in, file, r); });

  uint64_t offset = kHeaderBytes;
  r.bytes_read = offset;
  std::vector<uint8_t> rec;
  bool end_seen = false;
  while (offset < file_size) {
    std::optional<ReadStop> stop = read_frame(in, file_size - offset, rec);
    uint32_t type = 0;
    if (!stop) {
      type = load_le<uint32_t>(rec.data());
      const auto payload = std::span<const uint8_t>(rec).subspan(8, rec.size() - kFrameBytes);
      if (!apply_record(type, payload, r)) {
        stop = ReadStop{true, "malformed record of type " + std::to_string(type) + " (payload of " +
                                  std::to_string(payload.size()) +
                                  " bytes does not match its contents)"};
      }
    }
    if (stop) {
      r.corrupt = stop->corrupt;
      r.truncated = !stop->corrupt;
      r.bytes_lost = file_size - offset;
      r.problem = file + ": " + stop->why + " at byte offset " + std::to_string(offset) + "; " +
                  std::to_string(r.records) + " records before it were read, " +
                  std::to_string(r.bytes_lost) + " bytes from there on were not";
      break;
    }
    end_seen = static_cast<RecordType>(type) == RecordType::kEnd;
    ++r.records;
    offset += rec.size();
    r.bytes_read = offset;
  }
  r.clean_end = end_seen && r.bytes_lost == 0;
  return r;
}

}  // namespace spikeflow::replay
