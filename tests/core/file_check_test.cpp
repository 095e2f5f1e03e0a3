// core/file_check.h: the input-file check every reader runs first, and the content sniffing that
// tells spikeflow's file kinds apart. The real writers' output is sniffed in the replay, models and
// CLI tests; here the signatures are written by hand from their format documents.
#include "core/file_check.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/common/test_support.h"

namespace spikeflow::core {
namespace {

std::vector<uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

std::string problem(const std::string& path, const char* noun = "session file") {
  return input_file_problem(path, noun).value_or("<none>");
}

TEST(FileCheckTest, a_readable_non_empty_regular_file_passes) {
  testing::TempDir dir("file_check");
  std::ofstream(dir.file("a.sfs")) << "x";
  EXPECT_FALSE(input_file_problem(dir.file("a.sfs"), "session file").has_value());
  EXPECT_NO_THROW(check_input_file(dir.file("a.sfs"), "session file"));
}

TEST(FileCheckTest, each_problem_is_named_with_the_noun) {
  testing::TempDir dir("file_check");
  EXPECT_EQ(problem(dir.file("absent.sfs")), "no such session file");
  EXPECT_EQ(problem(dir.path().string()), "is a directory, not a session file");
  std::ofstream(dir.file("empty.sfs")).flush();
  EXPECT_EQ(problem(dir.file("empty.sfs")), "session file is empty (0 bytes)");
  EXPECT_EQ(problem(""), "no session file named (empty path)");
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  EXPECT_EQ(problem(dir.file("fifo")), "is a fifo, not a regular file");
  std::filesystem::create_symlink(dir.file("absent.sfs"), dir.file("dangling"));
  EXPECT_EQ(problem(dir.file("dangling")), "no such session file");
  if (::geteuid() != 0) {  // root reads any file
    std::ofstream(dir.file("locked.sfs")) << "x";
    ::chmod(dir.file("locked.sfs").c_str(), 0);
    EXPECT_EQ(problem(dir.file("locked.sfs")).rfind("cannot read session file (", 0), 0u);
  }
}

TEST(FileCheckTest, check_throws_an_input_file_error_naming_the_path) {
  testing::TempDir dir("file_check");
  try {
    check_input_file(dir.path().string(), "checkpoint");
    FAIL() << "no error";
  } catch (const InputFileError& e) {
    EXPECT_EQ(std::string(e.what()), dir.path().string() + ": is a directory, not a checkpoint");
  }
}

TEST(FileCheckTest, as_input_file_error_converts_runtime_errors_only) {
  EXPECT_THROW(as_input_file_error([]() -> int { throw std::runtime_error("x: corrupt"); }),
               InputFileError);
  EXPECT_THROW(as_input_file_error([]() -> int { throw std::invalid_argument("bad option"); }),
               std::invalid_argument);
  EXPECT_EQ(as_input_file_error([] { return 7; }), 7);
  try {
    as_input_file_error([]() -> int { throw std::runtime_error("x: corrupt"); });
  } catch (const InputFileError& e) {
    EXPECT_STREQ(e.what(), "x: corrupt");
  }
}

TEST(FileCheckTest, sniffs_every_kind_by_its_signature) {
  using std::string_literals::operator""s;
  EXPECT_EQ(sniff_format(bytes("SFSESS\0\1rest"s)), FileFormat::kSessionFile);
  EXPECT_EQ(sniff_format(bytes("SFREC\0\0\1rest"s)), FileFormat::kRecording);
  EXPECT_EQ(sniff_format(bytes("SPKFLWCKrest"s)), FileFormat::kCheckpoint);
  EXPECT_EQ(sniff_format(bytes("\x89HDF\r\n\x1a\nrest"s)), FileFormat::kHdf5);
  std::string mat5 = "MATLAB 5.0 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024";
  mat5.resize(kSniffBytes, ' ');
  EXPECT_EQ(sniff_format(bytes(mat5)), FileFormat::kMatV5);
  // v7.3: the same kind of text header in a 512-byte user block, then the HDF5 signature.
  std::string mat73 =
      "MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 HDF5 schema";
  mat73.resize(512, ' ');
  mat73 += "\x89HDF\r\n\x1a\n"s;
  EXPECT_EQ(sniff_format(bytes(mat73)), FileFormat::kMatV73);
  EXPECT_EQ(sniff_format(bytes(mat73.substr(0, 100))), FileFormat::kMatV73);  // text alone says 7.3
  // Too short, near misses and text are unknown, never a crash.
  EXPECT_EQ(sniff_format(bytes("SFSESS\0"s)), FileFormat::kUnknown);
  EXPECT_EQ(sniff_format(bytes("\x89HDF"s)), FileFormat::kUnknown);
  EXPECT_EQ(sniff_format(bytes("seq,start_ns,end_ns\n")), FileFormat::kUnknown);
  EXPECT_EQ(sniff_format({}), FileFormat::kUnknown);
}

TEST(FileCheckTest, sniff_file_reads_the_head_of_a_file) {
  testing::TempDir dir("file_check");
  std::ofstream(dir.file("x.mat"), std::ios::binary)
      << std::string("\x89HDF\r\n\x1a\n", 8) << std::string(1000, '\0');
  EXPECT_EQ(sniff_file(dir.file("x.mat")), FileFormat::kHdf5);
  EXPECT_EQ(sniff_file(dir.file("absent")), FileFormat::kUnknown);
  EXPECT_EQ(describe(FileFormat::kHdf5), "an HDF5 file");
}

}  // namespace
}  // namespace spikeflow::core
