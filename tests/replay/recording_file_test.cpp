#include "replay/recording_file.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "core/byte_io.h"
#include "core/checksum.h"
#include "core/file_check.h"
#include "test_util.h"

namespace spikeflow::replay {
namespace {

using testing::TempDir;
constexpr size_t kHeader = 40;

std::vector<char> read_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::string& p, const std::vector<char>& b, size_t n) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(b.data(), static_cast<std::streamsize>(n));
}

// Record start offsets, parsed independently of the reader from the length fields.
std::vector<size_t> record_offsets(const std::vector<char>& b) {
  std::vector<size_t> out;
  size_t pos = kHeader;
  while (pos + 8 <= b.size()) {
    out.push_back(pos);
    pos += 12 + core::load_le<uint32_t>(reinterpret_cast<const uint8_t*>(b.data()) + pos + 4);
  }
  return out;
}

core::EventBatch batch(int k, size_t n) {
  core::EventBatch b;
  b.arrival_host_ns = 1'000'000'000 + k * 1000;
  b.device_time_ns = k == 0 ? -1 : k * 50'000'000;
  for (size_t i = 0; i < n; ++i) {
    core::SpikeEvent e;
    e.t_ns = k * 50'000'000 + static_cast<int64_t>(i) * 7;
    e.channel = static_cast<uint32_t>(i % 96 + 1);
    e.unit = static_cast<uint16_t>(i % 3);
    b.events.push_back(e);
  }
  return b;
}

core::Prediction prediction(int k, int dim) {
  core::Prediction p;
  p.seq = k;
  p.start_ns = k * 50'000'000LL;
  p.end_ns = p.start_ns + 50'000'000;
  p.flags = static_cast<uint32_t>(k % 5);
  p.n_tokens = static_cast<uint32_t>(k * 3);
  p.output_dim = dim;
  for (int d = 0; d < dim; ++d)
    p.values[static_cast<size_t>(d)] = 0.5f * static_cast<float>(k) - static_cast<float>(d);
  p.timing = {100 + k, 200 + k, 300 + k, 400 + k, 500 + k, 600 + k};
  return p;
}

void expect_same(const core::EventBatch& a, const core::EventBatch& b) {
  EXPECT_EQ(a.arrival_host_ns, b.arrival_host_ns);
  EXPECT_EQ(a.device_time_ns, b.device_time_ns);
  ASSERT_EQ(a.events.size(), b.events.size());
  for (size_t i = 0; i < a.events.size(); ++i) {
    EXPECT_EQ(a.events[i].t_ns, b.events[i].t_ns);
    EXPECT_EQ(a.events[i].channel, b.events[i].channel);
    EXPECT_EQ(a.events[i].unit, b.events[i].unit);
  }
}

void expect_same(const core::Prediction& a, const core::Prediction& b) {
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(a.start_ns, b.start_ns);
  EXPECT_EQ(a.end_ns, b.end_ns);
  EXPECT_EQ(a.flags, b.flags);
  EXPECT_EQ(a.n_tokens, b.n_tokens);
  ASSERT_EQ(a.output_dim, b.output_dim);
  for (int d = 0; d < a.output_dim; ++d)
    EXPECT_EQ(a.values[static_cast<size_t>(d)], b.values[static_cast<size_t>(d)]);
  EXPECT_EQ(a.timing.trigger_arrival_ns, b.timing.trigger_arrival_ns);
  EXPECT_EQ(a.timing.close_ns, b.timing.close_ns);
  EXPECT_EQ(a.timing.tokenize_ns, b.timing.tokenize_ns);
  EXPECT_EQ(a.timing.decode_start_ns, b.timing.decode_start_ns);
  EXPECT_EQ(a.timing.decode_end_ns, b.timing.decode_end_ns);
  EXPECT_EQ(a.timing.publish_ns, b.timing.publish_ns);
}

// A run: config, model, units, then interleaved events and predictions. Returns what was written.
struct Written {
  std::vector<core::EventBatch> batches;
  std::vector<core::Prediction> predictions;
};
Written write_run(RecordingWriter& w, int n, bool close) {
  Written out;
  EXPECT_TRUE(w.write_config("chunk:\n  width_ms: 50\n"));
  EXPECT_TRUE(w.write_model("possm d=64", "sha256:0123abcd"));
  EXPECT_TRUE(w.write_units({{1, 1}, {1, 2}, {65535, 255}}));
  for (int k = 0; k < n; ++k) {
    out.batches.push_back(batch(k, static_cast<size_t>(k % 4) * 5));  // includes empty batches
    EXPECT_TRUE(w.write_events(out.batches.back()));
    out.predictions.push_back(prediction(k, k % 3 == 0 ? 8 : 2));
    EXPECT_TRUE(w.write_prediction(out.predictions.back()));
    if (k % 7 == 0) {
      EXPECT_TRUE(w.flush());
    }
  }
  if (close) {
    EXPECT_TRUE(w.close());
  }
  return out;
}

TEST(RecordingFileTest, round_trip_keeps_every_record) {
  TempDir dir;
  const std::string path = dir.file("run.sfrec");
  RecordingWriter w;
  w.open(path);
  const Written in = write_run(w, 40, /*close=*/true);
  EXPECT_TRUE(w.ok());
  EXPECT_TRUE(w.error().empty());
  EXPECT_EQ(w.counters().records, 3u + 80u);
  EXPECT_EQ(w.counters().bytes_written, std::filesystem::file_size(path));

  const Recording r = read_recording(path);
  EXPECT_EQ(r.version, 1u);
  EXPECT_GT(r.created_unix_ns, 1'600'000'000'000'000'000LL);
  EXPECT_EQ(r.config, "chunk:\n  width_ms: 50\n");
  EXPECT_EQ(r.model, "possm d=64");
  EXPECT_EQ(r.model_identity, "sha256:0123abcd");
  EXPECT_EQ(r.units, (std::vector<core::UnitKey>{{1, 1}, {1, 2}, {65535, 255}}));
  ASSERT_EQ(r.batches.size(), in.batches.size());
  for (size_t i = 0; i < in.batches.size(); ++i) expect_same(r.batches[i], in.batches[i]);
  ASSERT_EQ(r.predictions.size(), in.predictions.size());
  for (size_t i = 0; i < in.predictions.size(); ++i)
    expect_same(r.predictions[i], in.predictions[i]);
  EXPECT_TRUE(r.clean_end);
  EXPECT_EQ(r.end_counters.event_records, 40u);
  EXPECT_EQ(r.end_counters.events, w.counters().events);
  EXPECT_EQ(r.end_counters.prediction_records, 40u);
  EXPECT_EQ(r.end_counters.records, 83u);
  EXPECT_EQ(r.end_counters.records_dropped, 0u);
  EXPECT_EQ(r.records, 84u);  // END included
  EXPECT_EQ(r.bytes_lost, 0u);
  EXPECT_EQ(r.bytes_read, std::filesystem::file_size(path));
  EXPECT_FALSE(r.truncated);
  EXPECT_FALSE(r.corrupt);
  EXPECT_TRUE(r.problem.empty()) << r.problem;
}

TEST(RecordingFileTest, records_larger_than_the_buffer_go_straight_through) {
  TempDir dir;
  const std::string path = dir.file("big.sfrec");
  RecordingWriter w(4096);
  w.open(path);
  const auto big = batch(3, 1000);  // 16 kB of events
  EXPECT_TRUE(w.write_events(batch(1, 2)));
  EXPECT_TRUE(w.write_events(big));
  EXPECT_TRUE(w.write_events(batch(2, 2)));
  EXPECT_TRUE(w.close());
  const Recording r = read_recording(path);
  ASSERT_EQ(r.batches.size(), 3u);
  expect_same(r.batches[1], big);
  EXPECT_EQ(r.batches[2].arrival_host_ns, batch(2, 2).arrival_host_ns);
  EXPECT_TRUE(r.clean_end);
}

// Truncating anywhere inside the last two records (a writer killed mid-write) keeps every
// complete record before the cut and reports the bytes after it.
void check_every_cut(const std::string& path, const std::string& scratch, bool closed) {
  const auto bytes = read_bytes(path);
  const auto offsets = record_offsets(bytes);
  ASSERT_GE(offsets.size(), 3u);
  const size_t n = offsets.size();
  const size_t second_last = offsets[n - 2];
  const size_t last = offsets[n - 1];
  for (size_t cut = second_last; cut < bytes.size(); ++cut) {
    write_bytes(scratch, bytes, cut);
    const Recording r = read_recording(scratch);
    const size_t complete = cut < last ? n - 2 : n - 1;
    const size_t boundary = cut < last ? second_last : last;
    ASSERT_EQ(r.records, complete) << "cut at " << cut;
    EXPECT_EQ(r.bytes_read, boundary) << "cut at " << cut;
    EXPECT_EQ(r.bytes_lost, cut - boundary) << "cut at " << cut;
    EXPECT_EQ(r.truncated, cut != boundary) << "cut at " << cut;
    EXPECT_FALSE(r.corrupt) << "cut at " << cut;
    EXPECT_FALSE(r.clean_end) << "cut at " << cut;
    if (cut != boundary) {
      EXPECT_NE(r.problem.find(scratch), std::string::npos) << r.problem;
      EXPECT_NE(r.problem.find("byte offset " + std::to_string(boundary)), std::string::npos)
          << r.problem;
    }
  }
  (void)closed;
}

TEST(RecordingFileTest, truncation_anywhere_in_the_last_two_records_is_reported) {
  TempDir dir;
  const std::string path = dir.file("closed.sfrec");
  {
    RecordingWriter w;
    w.open(path);
    write_run(w, 6, /*close=*/true);  // ends ... PREDICTION, END
  }
  check_every_cut(path, dir.file("cut.sfrec"), true);

  // Never closed (owner killed): ends ... EVENTS, PREDICTION; the destructor only flushes.
  const std::string open_path = dir.file("open.sfrec");
  {
    RecordingWriter w;
    w.open(open_path);
    write_run(w, 6, /*close=*/false);
  }
  const Recording r = read_recording(open_path);
  EXPECT_FALSE(r.clean_end);
  EXPECT_EQ(r.bytes_lost, 0u);
  EXPECT_EQ(r.predictions.size(), 6u);
  check_every_cut(open_path, dir.file("cut2.sfrec"), false);
}

TEST(RecordingFileTest, a_corrupt_record_in_the_middle_stops_reading_there) {
  TempDir dir;
  const std::string path = dir.file("run.sfrec");
  {
    RecordingWriter w;
    w.open(path);
    write_run(w, 10, true);
  }
  auto bytes = read_bytes(path);
  const auto offsets = record_offsets(bytes);
  const size_t k = 9;  // some EVENTS / PREDICTION record in the middle
  const size_t at = offsets[k];
  for (size_t flip : {at + 1 /* type */, at + 14 /* payload */}) {
    auto damaged = bytes;
    damaged[flip] = static_cast<char>(damaged[flip] ^ 0x40);
    const std::string bad = dir.file("bad.sfrec");
    write_bytes(bad, damaged, damaged.size());
    const Recording r = read_recording(bad);
    EXPECT_EQ(r.records, k);
    EXPECT_TRUE(r.corrupt);
    EXPECT_FALSE(r.truncated);
    EXPECT_FALSE(r.clean_end);
    EXPECT_EQ(r.bytes_read, at);
    EXPECT_EQ(r.bytes_lost, bytes.size() - at);
    EXPECT_NE(
        r.problem.find(bad + ": recording: corrupt record (checksum mismatch) at byte offset " +
                       std::to_string(at)),
        std::string::npos)
        << r.problem;
  }
  // A damaged length field that claims an absurd size is corruption too, not a truncation.
  auto damaged = bytes;
  damaged[offsets[k] + 7] = static_cast<char>(0x7f);
  write_bytes(dir.file("len.sfrec"), damaged, damaged.size());
  const Recording r = read_recording(dir.file("len.sfrec"));
  EXPECT_TRUE(r.corrupt);
  EXPECT_NE(r.problem.find("implausible payload length"), std::string::npos) << r.problem;

  // The last record failing its checksum is a torn write at the tail.
  damaged = bytes;
  damaged[damaged.size() - 10] = static_cast<char>(damaged[damaged.size() - 10] ^ 1);
  write_bytes(dir.file("tail.sfrec"), damaged, damaged.size());
  const Recording t = read_recording(dir.file("tail.sfrec"));
  EXPECT_TRUE(t.truncated);
  EXPECT_FALSE(t.corrupt);
  EXPECT_EQ(t.records, offsets.size() - 1);
  EXPECT_NE(t.problem.find("torn write"), std::string::npos) << t.problem;
}

TEST(RecordingFileTest, header_problems_throw_naming_the_file) {
  TempDir dir;
  auto error = [](const std::string& p) -> std::string {
    try {
      read_recording(p);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return {};
  };
  EXPECT_NE(error(dir.file("absent.sfrec")).find("absent.sfrec: no such recording file"),
            std::string::npos);
  const std::string path = dir.file("run.sfrec");
  {
    RecordingWriter w;
    w.open(path);
    write_run(w, 2, true);
  }
  const auto bytes = read_bytes(path);
  const std::string other = dir.file("other.sfrec");
  auto damaged = bytes;
  damaged[0] = 'X';
  write_bytes(other, damaged, damaged.size());
  EXPECT_NE(error(other).find(other + ": recording: wrong magic"), std::string::npos)
      << error(other);
  damaged = bytes;
  damaged[8] = 2;  // version
  write_bytes(other, damaged, damaged.size());
  EXPECT_NE(error(other).find("unsupported version 2"), std::string::npos) << error(other);
  damaged = bytes;
  damaged[20] ^= 1;  // creation time, covered by the header CRC
  write_bytes(other, damaged, damaged.size());
  EXPECT_NE(error(other).find("corrupt header"), std::string::npos) << error(other);
  write_bytes(other, bytes, 20);
  EXPECT_NE(error(other).find("truncated header (20 of 40 bytes)"), std::string::npos)
      << error(other);
  EXPECT_EQ(core::sniff_file(path), core::FileFormat::kRecording);
  // The header problems and the file check are InputFileErrors naming the file.
  EXPECT_THROW(read_recording(other), core::InputFileError);
  EXPECT_EQ(error(dir.path().string()),
            dir.path().string() + ": is a directory, not a recording file");
  write_bytes(other, bytes, 0);
  EXPECT_EQ(error(other), other + ": recording file is empty (0 bytes)");
  std::vector<char> session{'S', 'F', 'S', 'E', 'S', 'S', 0, 1, 1, 0, 0, 0};
  write_bytes(other, session, session.size());
  EXPECT_NE(error(other).find("not a spikeflow recording: it is a spikeflow session file (.sfs)"),
            std::string::npos)
      << error(other);

  RecordingWriter w;
  try {
    w.open(dir.file("no/such/dir/x.sfrec"));
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("no/such/dir/x.sfrec: cannot create recording file"),
              std::string::npos)
        << e.what();
  }
}

TEST(RecordingFileTest, unknown_record_types_are_skipped) {
  TempDir dir;
  const std::string path = dir.file("run.sfrec");
  {
    RecordingWriter w;
    w.open(path);
    write_run(w, 2, false);
  }
  auto bytes = read_bytes(path);
  std::vector<uint8_t> rec = {99, 0, 0, 0, 3, 0, 0, 0, 'a', 'b', 'c'};
  rec.resize(rec.size() + 4);
  core::store_le<uint32_t>(rec.data() + rec.size() - 4,
                           core::crc32(std::span<const uint8_t>(rec).first(rec.size() - 4)));
  bytes.insert(bytes.end(), rec.begin(), rec.end());
  write_bytes(path, bytes, bytes.size());
  const Recording r = read_recording(path);
  EXPECT_EQ(r.unknown_records, 1u);
  EXPECT_EQ(r.predictions.size(), 2u);
  EXPECT_EQ(r.bytes_lost, 0u);
  EXPECT_FALSE(r.corrupt);
}

TEST(RecordingFileTest, io_errors_are_counted_never_thrown_on_the_hot_path) {
  if (!std::filesystem::exists("/dev/full")) GTEST_SKIP() << "/dev/full not available";
  RecordingWriter w(4096);
  w.open("/dev/full");               // every write fails with ENOSPC
  EXPECT_TRUE(w.write_config("x"));  // buffered
  EXPECT_FALSE(w.flush());
  EXPECT_FALSE(w.ok());
  EXPECT_NE(w.error().find("/dev/full: write failed"), std::string::npos) << w.error();
  EXPECT_EQ(w.counters().records_dropped, 1u);
  EXPECT_FALSE(w.write_events(batch(1, 3)));
  EXPECT_FALSE(w.write_prediction(prediction(1, 2)));
  EXPECT_EQ(w.counters().records_dropped, 3u);
  EXPECT_EQ(w.counters().io_errors, 1u);
  EXPECT_FALSE(w.close());
  EXPECT_FALSE(w.is_open());
  // Writing to a closed writer is counted too.
  EXPECT_FALSE(w.write_config("y"));
  EXPECT_EQ(w.counters().records_dropped, 5u);  // END at close + this one
}

// A version-1 recording as the first writer (with its own CRC table) wrote it: CONFIG, MODEL,
// UNITS, EVENTS, PREDICTION, END. The reader must keep reading it; the writer must keep framing
// the same records byte for byte (everything but the header's and END's wall-clock times).
constexpr uint8_t kGoldenRecording[] = {
    0x53, 0x46, 0x52, 0x45, 0x43, 0x00, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x28, 0x00, 0x00, 0x00,
    0xe1, 0xbb, 0x88, 0x8f, 0x7f, 0xd5, 0xec, 0x18, 0xcb, 0x3e, 0x73, 0x2c, 0x56, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xf7, 0x7c, 0x24, 0xf9, 0x01, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00,
    0x63, 0x66, 0x67, 0x3a, 0x20, 0x31, 0x0a, 0x67, 0x6c, 0xa1, 0x89, 0x02, 0x00, 0x00, 0x00, 0x15,
    0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x72, 0x69, 0x64, 0x67, 0x65, 0x08, 0x00, 0x00, 0x00,
    0x31, 0x32, 0x33, 0x3a, 0x30, 0x30, 0x66, 0x66, 0x26, 0xed, 0xbb, 0x7a, 0x03, 0x00, 0x00, 0x00,
    0x14, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x07, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x23, 0xb7, 0xa9, 0x50, 0x04, 0x00, 0x00, 0x00,
    0x28, 0x00, 0x00, 0x00, 0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x84, 0x03, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x52, 0x03, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0xde, 0x34, 0xfe, 0x08,
    0x05, 0x00, 0x00, 0x00, 0x60, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x84, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xe9, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xea, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xeb, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xec, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xed, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0x80, 0xbf, 0x25, 0xae, 0x73, 0x83, 0x06, 0x00, 0x00, 0x00,
    0x30, 0x00, 0x00, 0x00, 0xc7, 0xcc, 0x88, 0x8f, 0x7f, 0xd5, 0xec, 0x18, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0xcc, 0xcf, 0x9d, 0xde,
};
constexpr size_t kGoldenEndRecordBytes = 12 + 48;

void write_golden_run(RecordingWriter& w) {
  w.write_config("cfg: 1\n");
  w.write_model("ridge", "123:00ff");
  w.write_units({{1, 0}, {7, 2}});
  core::EventBatch b;
  b.arrival_host_ns = 1000;
  b.device_time_ns = 900;
  b.events.push_back({850, 7, 2, 0});
  w.write_events(b);
  core::Prediction p;
  p.seq = 3;
  p.end_ns = 900;
  p.flags = 1;
  p.n_tokens = 1;
  p.output_dim = 2;
  p.values[0] = 0.5f;
  p.values[1] = -1.0f;
  p.timing = {1000, 1001, 1002, 1003, 1004, 1005};
  w.write_prediction(p);
}

TEST(RecordingFileTest, reads_and_writes_the_golden_version_1_file) {
  TempDir dir;
  const std::string golden = dir.file("golden.sfrec");
  write_bytes(golden, std::vector<char>(std::begin(kGoldenRecording), std::end(kGoldenRecording)),
              sizeof kGoldenRecording);
  const Recording r = read_recording(golden);
  EXPECT_TRUE(r.clean_end) << r.problem;
  EXPECT_EQ(r.records, 6u);
  EXPECT_EQ(r.config, "cfg: 1\n");
  EXPECT_EQ(r.model, "ridge");
  EXPECT_EQ(r.model_identity, "123:00ff");
  ASSERT_EQ(r.units.size(), 2u);
  EXPECT_EQ(r.units[1].channel, 7u);
  EXPECT_EQ(r.units[1].unit, 2u);
  ASSERT_EQ(r.batches.size(), 1u);
  ASSERT_EQ(r.batches[0].events.size(), 1u);
  EXPECT_EQ(r.batches[0].events[0].t_ns, 850);
  ASSERT_EQ(r.predictions.size(), 1u);
  EXPECT_EQ(r.predictions[0].values[1], -1.0f);
  EXPECT_EQ(r.predictions[0].timing.publish_ns, 1005);
  EXPECT_EQ(r.end_counters.records, 5u);
  EXPECT_EQ(r.end_counters.events, 1u);

  EXPECT_EQ(r.predictions[0].chunk_index, 3) << "before epochs, seq was the chunk index";
  EXPECT_EQ(r.predictions[0].epoch, 0u);

  // The writer reproduces every record byte for byte up to the prediction, which it now writes
  // as a PREDICTION v2 record (wire seq, chunk_index and epoch apart).
  const std::string written = dir.file("written.sfrec");
  {
    RecordingWriter w;
    w.open(written);
    write_golden_run(w);
    ASSERT_TRUE(w.close());
  }
  const auto bytes = read_bytes(written);
  constexpr size_t kGoldenPredictionRecordBytes = 12 + 88 + 8;
  const size_t prediction_at =
      sizeof kGoldenRecording - kGoldenEndRecordBytes - kGoldenPredictionRecordBytes;
  ASSERT_EQ(bytes.size(), sizeof kGoldenRecording + 16);
  EXPECT_TRUE(std::equal(bytes.begin() + kHeader,
                         bytes.begin() + static_cast<std::ptrdiff_t>(prediction_at),
                         reinterpret_cast<const char*>(kGoldenRecording) + kHeader));
  const Recording back = read_recording(written);
  ASSERT_EQ(back.predictions.size(), 1u);
  EXPECT_EQ(back.predictions[0].seq, 3);
  EXPECT_EQ(back.predictions[0].chunk_index, 0) << "what write_golden_run set (never set)";
  EXPECT_EQ(back.predictions[0].values[1], -1.0f);
  EXPECT_EQ(back.predictions[0].timing.publish_ns, 1005);
}

TEST(RecordingFileTest, predictions_keep_their_epoch_and_chunk_index) {
  TempDir dir;
  const std::string f = dir.file("e.sfrec");
  {
    RecordingWriter w;
    w.open(f);
    core::Prediction p;
    p.seq = 41;
    p.chunk_index = 7;
    p.epoch = 3;
    p.output_dim = 1;
    p.values[0] = 2.5f;
    w.write_prediction(p);
    ASSERT_TRUE(w.close());
  }
  const Recording r = read_recording(f);
  ASSERT_EQ(r.predictions.size(), 1u);
  EXPECT_EQ(r.predictions[0].seq, 41);
  EXPECT_EQ(r.predictions[0].chunk_index, 7);
  EXPECT_EQ(r.predictions[0].epoch, 3u);
  EXPECT_EQ(r.predictions[0].values[0], 2.5f);
}

// Found by recording_file_fuzz: a MODEL record with a valid CRC but inconsistent string lengths
// stopped reading as corrupt, yet the strings it had decoded were already in Recording::model,
// i.e. content from the record reading stopped "before". The input (CRCs repaired, as the harness
// feeds it) stays in the fuzz corpus.
TEST(RecordingFileTest, fuzz_regression_malformed_record_leaves_no_trace) {
  const std::string path =
      std::string(SPIKEFLOW_SOURCE_DIR) +
      "/tests/fuzz/corpus/recording_file_fuzz/regress-malformed-model-kept.sfrec";
  const Recording r = read_recording(path);
  EXPECT_TRUE(r.corrupt);
  EXPECT_NE(r.problem.find("malformed record of type 2"), std::string::npos) << r.problem;
  EXPECT_TRUE(r.model.empty()) << r.model;
  EXPECT_TRUE(r.model_identity.empty()) << r.model_identity;
  EXPECT_LE(r.config.size(), r.bytes_read);
}

}  // namespace
}  // namespace spikeflow::replay
