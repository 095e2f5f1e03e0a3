#include "replay/session_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "core/file_check.h"
#include "replay/synth_session.h"
#include "test_util.h"

namespace spikeflow::replay {
namespace {

using testing::TempDir;

Session sample_session() {
  SynthOptions o;
  o.num_units = 12;
  o.duration_s = 20.0;
  o.seed = 7;
  Session s = synthesize_session(o);
  s.units[3] = {65535, 255};  // extremes survive the round trip
  return s;
}

void expect_bit_identical(const Session& a, const Session& b) {
  ASSERT_EQ(a.units.size(), b.units.size());
  for (size_t i = 0; i < a.units.size(); ++i) EXPECT_EQ(a.units[i], b.units[i]);
  EXPECT_EQ(a.spike_times_ns, b.spike_times_ns);
  EXPECT_EQ(a.behavior_names, b.behavior_names);
  EXPECT_EQ(a.behavior_t_ns, b.behavior_t_ns);
  ASSERT_EQ(a.behavior.size(), b.behavior.size());
  if (!a.behavior.empty()) {  // memcmp on an empty vector's null data() is undefined
    EXPECT_EQ(0,
              std::memcmp(a.behavior.data(), b.behavior.data(), a.behavior.size() * sizeof(float)));
  }
  ASSERT_EQ(a.trials.size(), b.trials.size());
  for (size_t i = 0; i < a.trials.size(); ++i) {
    EXPECT_EQ(a.trials[i].start_ns, b.trials[i].start_ns);
    EXPECT_EQ(a.trials[i].end_ns, b.trials[i].end_ns);
    EXPECT_EQ(a.trials[i].condition, b.trials[i].condition);
  }
  EXPECT_EQ(a.start_ns, b.start_ns);
  EXPECT_EQ(a.end_ns, b.end_ns);
}

std::vector<char> read_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
void write_bytes(const std::string& p, const std::vector<char>& b) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(b.data(), static_cast<std::streamsize>(b.size()));
}

std::string read_error(const std::string& path) {
  try {
    read_session_file(path);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return {};
}

TEST(SessionFileTest, round_trip_is_bit_exact) {
  TempDir dir;
  const Session s = sample_session();
  const std::string path = dir.file("a.sfs");
  write_session_file(s, path);
  expect_bit_identical(s, read_session_file(path));
  expect_bit_identical(s, load_session(path));
  // Only the final file remains: the temp file was renamed, not left behind.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1u);
  // Writing the same session twice gives the same bytes.
  write_session_file(s, dir.file("b.sfs"));
  EXPECT_EQ(read_bytes(path), read_bytes(dir.file("b.sfs")));
}

TEST(SessionFileTest, empty_session_round_trips) {
  TempDir dir;
  Session s;
  s.end_ns = 10;
  write_session_file(s, dir.file("e.sfs"));
  expect_bit_identical(s, read_session_file(dir.file("e.sfs")));
}

// Found by session_file_fuzz (UBSan): a session with no units, samples or trials read its empty
// arrays with memcpy into a null vector data pointer. The input stays in the fuzz corpus.
TEST(SessionFileTest, fuzz_regression_empty_arrays_read_cleanly) {
  const std::string path = std::string(SPIKEFLOW_SOURCE_DIR) +
                           "/tests/fuzz/corpus/session_file_fuzz/regress-empty-arrays.sfs";
  const Session s = read_session_file(path);
  EXPECT_EQ(s.num_units(), 0u);
  EXPECT_TRUE(s.behavior_t_ns.empty());
  EXPECT_TRUE(s.trials.empty());
}

TEST(SessionFileTest, header_starts_with_magic_and_version) {
  TempDir dir;
  write_session_file(sample_session(), dir.file("h.sfs"));
  const auto b = read_bytes(dir.file("h.sfs"));
  ASSERT_GE(b.size(), 16u);
  EXPECT_EQ(0, std::memcmp(b.data(), "SFSESS\0\1", 8));
  EXPECT_EQ(b[8], 1);
  EXPECT_EQ(b[9], 0);
  EXPECT_EQ(0, std::memcmp(b.data() + 16, "META", 4));
}

TEST(SessionFileTest, every_truncation_is_an_error_naming_the_file) {
  TempDir dir;
  Session s = sample_session();
  s.spike_times_ns.assign(s.units.size(), {});  // keep the file small: test every length
  s.spike_times_ns[0] = {1, 2, 3};
  const std::string path = dir.file("t.sfs");
  write_session_file(s, path);
  const auto full = read_bytes(path);
  const std::string cut = dir.file("cut.sfs");
  for (size_t n = 0; n < full.size(); n += (n < 400 ? 1 : 97)) {
    write_bytes(cut, std::vector<char>(full.begin(), full.begin() + static_cast<long>(n)));
    const std::string msg = read_error(cut);
    ASSERT_FALSE(msg.empty()) << "length " << n;
    EXPECT_NE(msg.find(cut), std::string::npos) << msg;
    if (n >= 16) {
      EXPECT_NE(msg.find("truncated"), std::string::npos) << n << ": " << msg;
    }
  }
}

TEST(SessionFileTest, corrupt_byte_is_detected_by_checksum) {
  TempDir dir;
  const std::string path = dir.file("c.sfs");
  write_session_file(sample_session(), path);
  auto b = read_bytes(path);
  b[b.size() / 2] = static_cast<char>(b[b.size() / 2] ^ 0x10);
  write_bytes(path, b);
  const std::string msg = read_error(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("checksum"), std::string::npos) << msg;
}

TEST(SessionFileTest, wrong_magic_version_and_trailing_bytes_are_errors) {
  TempDir dir;
  const std::string path = dir.file("m.sfs");
  write_session_file(sample_session(), path);
  const auto good = read_bytes(path);

  auto b = good;
  b[0] = 'X';
  write_bytes(path, b);
  EXPECT_NE(read_error(path).find("wrong magic"), std::string::npos) << read_error(path);

  b = good;
  b[8] = 2;
  write_bytes(path, b);
  EXPECT_NE(read_error(path).find("unsupported version 2"), std::string::npos);

  b = good;
  b.push_back(0);
  write_bytes(path, b);
  EXPECT_NE(read_error(path).find("unexpected bytes"), std::string::npos);

  EXPECT_NE(read_error(dir.file("absent.sfs")).find("absent.sfs: no such session file"),
            std::string::npos);
}

TEST(SessionFileTest, writing_an_invalid_session_throws_and_leaves_nothing) {
  TempDir dir;
  Session s = sample_session();
  s.spike_times_ns[0] = {5, 1};
  EXPECT_THROW(write_session_file(s, dir.file("bad.sfs")), std::runtime_error);
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
  EXPECT_THROW(write_session_file(sample_session(), dir.file("no/such/dir/x.sfs")),
               std::runtime_error);
}

TEST(SessionFileTest, load_session_dispatches_by_content_then_extension) {
  TempDir dir;
  const Session s = sample_session();
  write_session_file(s, dir.file("a.sfs"));
  std::filesystem::copy_file(dir.file("a.sfs"), dir.file("renamed.bin"));
  expect_bit_identical(s, load_session(dir.file("renamed.bin")));

  write_bytes(dir.file("notes.txt"), {'h', 'e', 'l', 'l', 'o'});
  try {
    load_session(dir.file("notes.txt"));
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("notes.txt"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("unsupported session format"), std::string::npos);
  }
  write_bytes(dir.file("fake.sfs"), {'h', 'e', 'l', 'l', 'o', '!', '!', '!', '!'});
  EXPECT_THROW(load_session(dir.file("fake.sfs")), std::runtime_error);
  EXPECT_THROW(load_session(dir.file("missing.sfs")), std::runtime_error);
  EXPECT_EQ(core::sniff_file(dir.file("a.sfs")), core::FileFormat::kSessionFile);
}

// Every failure to read a session is an InputFileError naming the file and the problem.
TEST(SessionFileTest, a_directory_an_empty_file_or_another_kind_is_named) {
  TempDir dir;
  auto error = [](const std::string& p) -> std::string {
    try {
      load_session(p);
    } catch (const core::InputFileError& e) {
      return e.what();
    }
    return "no InputFileError";
  };
  std::filesystem::create_directory(dir.file("d.sfs"));
  EXPECT_EQ(error(dir.file("d.sfs")), dir.file("d.sfs") + ": is a directory, not a session file");
  write_bytes(dir.file("e.sfs"), {});
  EXPECT_EQ(error(dir.file("e.sfs")), dir.file("e.sfs") + ": session file is empty (0 bytes)");
  write_bytes(dir.file("r.sfs"), {'S', 'F', 'R', 'E', 'C', 0, 0, 1, 0});
  EXPECT_EQ(
      error(dir.file("r.sfs")),
      dir.file("r.sfs") + ": is a spikeflow recording, not a session (pass it with --recording)");
  write_bytes(dir.file("c.sfs"), {'S', 'P', 'K', 'F', 'L', 'W', 'C', 'K', 0});
  EXPECT_EQ(
      error(dir.file("c.sfs")),
      dir.file("c.sfs") + ": is a spikeflow checkpoint, not a session (pass it with --checkpoint)");
  write_bytes(dir.file("t.sfs"), {'S', 'F', 'S', 'E', 'S', 'S', 0, 1, 1, 0});
  EXPECT_NE(error(dir.file("t.sfs")).find("t.sfs: session file: truncated header"),
            std::string::npos)
      << error(dir.file("t.sfs"));
}

// A version-1 file as the first writer (with its own CRC loop) wrote it: the reader must keep
// reading it, and the writer must keep producing exactly these bytes.
constexpr uint8_t kGoldenSessionFile[] = {
    0x53, 0x46, 0x53, 0x45, 0x53, 0x53, 0x00, 0x01, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00,
    0x4d, 0x45, 0x54, 0x41, 0x4d, 0xef, 0x11, 0x06, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x55, 0x4e, 0x49, 0x54, 0x56, 0x1b, 0x1f, 0xe2,
    0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x07, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x53, 0x50, 0x49, 0x4b, 0xd0, 0x8a, 0xce, 0x7d,
    0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x42, 0x4e, 0x41, 0x4d, 0x48, 0xe8, 0x22, 0x3f, 0x0c, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x00, 0x00, 0x76, 0x78, 0x02, 0x00, 0x00, 0x00, 0x76, 0x79, 0x42, 0x45, 0x48, 0x56,
    0x62, 0x53, 0x19, 0x69, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x19, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xc0, 0x3f,
    0x00, 0x00, 0x00, 0xc0, 0x00, 0x00, 0x80, 0x3e, 0x00, 0x00, 0x40, 0x40, 0x54, 0x52, 0x49, 0x4c,
    0xf6, 0x05, 0xeb, 0xeb, 0x18, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x1e, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
};

Session golden_session() {
  Session s;
  s.units = {{1, 0}, {7, 2}};
  s.spike_times_ns = {{10, 20}, {15}};
  s.behavior_names = {"vx", "vy"};
  s.behavior_t_ns = {5, 25};
  s.behavior = {1.5f, -2.0f, 0.25f, 3.0f};
  s.trials = {{0, 30, 3}};
  s.start_ns = 0;
  s.end_ns = 30;
  return s;
}

TEST(SessionFileTest, reads_and_writes_the_golden_version_1_file) {
  TempDir dir;
  const std::string golden = dir.file("golden.sfs");
  {
    std::ofstream out(golden, std::ios::binary);
    out.write(reinterpret_cast<const char*>(kGoldenSessionFile), sizeof kGoldenSessionFile);
  }
  expect_bit_identical(read_session_file(golden), golden_session());

  const std::string written = dir.file("written.sfs");
  write_session_file(golden_session(), written);
  std::ifstream in(written, std::ios::binary);
  const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in),
                                   std::istreambuf_iterator<char>()};
  EXPECT_EQ(bytes,
            std::vector<uint8_t>(std::begin(kGoldenSessionFile), std::end(kGoldenSessionFile)));
}

// Found by session_file_fuzz: a META section declaring billions of behaviour names (or units, or
// trials) resized a vector to that count before reading them (135 GB, bad_alloc). A count the
// section's bytes cannot hold is now "truncated". The input (with its section CRCs repaired, as
// the harness feeds it) stays in the fuzz corpus.
TEST(SessionFileTest, fuzz_regression_huge_count_is_an_error_not_an_allocation) {
  const std::string path = std::string(SPIKEFLOW_SOURCE_DIR) +
                           "/tests/fuzz/corpus/session_file_fuzz/regress-huge-name-count.sfs";
  try {
    read_session_file(path);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace spikeflow::replay
