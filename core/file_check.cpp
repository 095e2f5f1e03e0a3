#include "core/file_check.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <vector>

namespace spikeflow::core {
namespace {

namespace fs = std::filesystem;

constexpr std::array<uint8_t, 8> kSessionMagic{'S', 'F', 'S', 'E', 'S', 'S', 0, 1};
constexpr std::array<uint8_t, 8> kRecordingMagic{'S', 'F', 'R', 'E', 'C', 0, 0, 1};
constexpr std::array<uint8_t, 8> kCheckpointMagic{'S', 'P', 'K', 'F', 'L', 'W', 'C', 'K'};
constexpr std::array<uint8_t, 8> kHdf5Magic{0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
/// A v7.3 MAT file is HDF5 with a 512-byte user block holding MATLAB's text header.
constexpr size_t kMatUserBlock = 512;

template <size_t N>
bool has_at(std::span<const uint8_t> head, size_t offset, const std::array<uint8_t, N>& magic) {
  return head.size() >= offset + N && std::equal(magic.begin(), magic.end(), head.begin() + offset);
}

bool starts_with_text(std::span<const uint8_t> head, std::string_view text) {
  return head.size() >= text.size() &&
         std::equal(text.begin(), text.end(), head.begin(),
                    [](char c, uint8_t b) { return static_cast<uint8_t>(c) == b; });
}

std::string_view type_name(fs::file_type t) {
  switch (t) {
    case fs::file_type::fifo:
      return "a fifo";
    case fs::file_type::socket:
      return "a socket";
    case fs::file_type::block:
      return "a block device";
    case fs::file_type::character:
      return "a character device";
    default:
      return "a special file";
  }
}

}  // namespace

std::optional<std::string> input_file_problem(const std::string& path, std::string_view noun) {
  const std::string n(noun);
  if (path.empty()) return "no " + n + " named (empty path)";
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);  // follows symlinks: a dangling one is missing
  if (st.type() == fs::file_type::not_found) return "no such " + n;
  if (ec) return "cannot access " + n + " (" + ec.message() + ")";
  if (st.type() == fs::file_type::directory) return "is a directory, not a " + n;
  if (st.type() != fs::file_type::regular)
    return "is " + std::string(type_name(st.type())) + ", not a regular file";
  // Opening is the real test of readability (access(2) says yes to root for any file).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "cannot read " + n + " (" + std::strerror(errno) + ")";
  ::close(fd);
  const auto size = fs::file_size(path, ec);
  if (ec) return "cannot determine the size of " + n + " (" + ec.message() + ")";
  if (size == 0) return n + " is empty (0 bytes)";
  return std::nullopt;
}

void check_input_file(const std::string& path, std::string_view noun) {
  if (auto problem = input_file_problem(path, noun)) throw InputFileError(path + ": " + *problem);
}

FileFormat sniff_format(std::span<const uint8_t> head) {
  if (has_at(head, 0, kSessionMagic)) return FileFormat::kSessionFile;
  if (has_at(head, 0, kRecordingMagic)) return FileFormat::kRecording;
  if (has_at(head, 0, kCheckpointMagic)) return FileFormat::kCheckpoint;
  if (has_at(head, 0, kHdf5Magic)) return FileFormat::kHdf5;
  // Checked after the HDF5 signature at 0 and before the one at 512: a v7.3 MAT file is HDF5
  // behind this text header.
  if (starts_with_text(head, "MATLAB ")) {
    if (has_at(head, kMatUserBlock, kHdf5Magic) || starts_with_text(head, "MATLAB 7.3"))
      return FileFormat::kMatV73;
    return FileFormat::kMatV5;
  }
  return FileFormat::kUnknown;
}

FileFormat sniff_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FileFormat::kUnknown;
  std::vector<uint8_t> head(kSniffBytes);
  size_t got = 0;
  while (got < head.size()) {
    const ssize_t n = ::read(fd, head.data() + got, head.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  ::close(fd);
  head.resize(got);
  return sniff_format(head);
}

std::string_view describe(FileFormat f) {
  switch (f) {
    case FileFormat::kSessionFile:
      return "a spikeflow session file (.sfs)";
    case FileFormat::kRecording:
      return "a spikeflow recording (.sfrec)";
    case FileFormat::kCheckpoint:
      return "a spikeflow checkpoint";
    case FileFormat::kMatV5:
      return "a MATLAB v5 MAT file";
    case FileFormat::kMatV73:
      return "a MATLAB v7.3 MAT file";
    case FileFormat::kHdf5:
      return "an HDF5 file";
    case FileFormat::kUnknown:
      break;
  }
  return "a file of unknown format";
}

}  // namespace spikeflow::core
