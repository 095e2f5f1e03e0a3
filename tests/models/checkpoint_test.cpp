// Checkpoints through the public, torch-free API: round trip, devices, and every way a file can
// be bad (missing, truncated, corrupt, wrong kind / version, mismatched shapes) — each error
// names the file.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "models/checkpoint_file.h"
#include "models/load_decoder.h"
#include "models/trainer.h"
#include "synthetic_dataset.h"
#include "tests/common/test_support.h"

namespace spikeflow::models {
namespace {

namespace fs = std::filesystem;

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = dir_.file("model.sfck");
    testing::SyntheticOptions o;
    o.num_units = 16;
    o.num_chunks = 30;
    data_ = testing::make_synthetic(o);
    config_.rnn_hidden = 32;
    save_untrained_possm(path_, config_, data_.units, 2, data_.width_ns, /*seed=*/11);
  }

  std::string bytes() const {
    std::ifstream f(path_, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
  }
  void write_bytes(const std::string& b) const {
    std::ofstream f(path_, std::ios::binary | std::ios::trunc);
    f.write(b.data(), static_cast<std::streamsize>(b.size()));
  }
  /// load_decoder must throw runtime_error naming the file and containing `what`.
  void expect_load_error(const std::string& what, const RuntimeOptions& rt = {}) const {
    try {
      load_decoder(path_, rt);
      FAIL() << "expected an error containing '" << what << "'";
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path_), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  }

  spikeflow::testing::TempDir dir_{"ckpt"};
  std::string path_;
  core::DecodingDataset data_;
  PossmConfig config_;
};

TEST_F(CheckpointTest, round_trip_gives_identical_outputs) {
  // Exact equality needs the same inference path on both sides (the fast path agrees to ~1e-7).
  const RuntimeOptions torch_path{"cpu", 1, "torch"};
  auto a = load_decoder(path_, torch_path);
  auto b = load_decoder(path_, torch_path);
  auto fresh =
      make_untrained_possm(config_, data_.units, 2, data_.width_ns, torch_path, /*seed=*/11);
  EXPECT_EQ(a->units(), data_.units);
  EXPECT_EQ(a->output_dim(), 2);
  EXPECT_EQ(a->chunk_width_ns(), data_.width_ns);
  EXPECT_NE(a->describe().find("possm"), std::string::npos);
  const auto ya = decode_dataset(*a, data_), yb = decode_dataset(*b, data_),
             yf = decode_dataset(*fresh, data_);
  EXPECT_EQ(ya, yb);
  EXPECT_EQ(ya, yf);
  // Saving what was loaded gives the same file content (metadata and weights round trip).
  const CheckpointFile ck = CheckpointFile::read(path_);
  EXPECT_EQ(ck.kind, "possm");
  EXPECT_EQ(ck.get_units("units"), data_.units);
}

TEST_F(CheckpointTest, missing_file) {
  fs::remove(path_);
  expect_load_error("no such checkpoint file");
  fs::create_directory(path_);
  expect_load_error("is a directory, not a checkpoint file");
  fs::remove(path_);
}

TEST_F(CheckpointTest, truncated_file) {
  const std::string b = bytes();
  for (size_t keep : {size_t{3}, size_t{15}, b.size() / 2, b.size() - 1}) {
    write_bytes(b.substr(0, keep));
    expect_load_error("truncated");
  }
  write_bytes("");
  expect_load_error("checkpoint file is empty (0 bytes)");
}

TEST_F(CheckpointTest, corrupt_file) {
  std::string b = bytes();
  for (size_t at : {b.size() / 3, b.size() / 2, b.size() - 20}) {
    std::string c = b;
    c[at] = static_cast<char>(c[at] ^ 0x5a);
    c[at + 1] = static_cast<char>(c[at + 1] ^ 0xff);
    write_bytes(c);
    expect_load_error("corrupt");
  }
  write_bytes(std::string(200, 'x'));
  expect_load_error("not a spikeflow checkpoint");
}

TEST_F(CheckpointTest, wrong_kind_and_version) {
  CheckpointFile ck = CheckpointFile::read(path_);
  ck.kind = "transformer";
  ck.write(path_);
  expect_load_error("unknown decoder kind 'transformer'");
  ck.kind = "possm";
  ck.kind_version = 99;
  ck.write(path_);
  expect_load_error("version 99");
}

TEST_F(CheckpointTest, mismatched_tensor_shapes) {
  CheckpointFile ck = CheckpointFile::read(path_);
  ck.set_int("config.rnn_hidden", 48);  // weights were saved for 32
  ck.write(path_);
  expect_load_error("shape");
  ck = CheckpointFile::read(path_);
  ck.set_int("config.rnn_hidden", 32);
  auto units = data_.units;
  units.push_back({999, 1});  // one more unit than the embedding has rows
  ck.set_units("units", units);
  ck.write(path_);
  expect_load_error("unit_emb.weight");
}

TEST_F(CheckpointTest, bad_metadata) {
  CheckpointFile ck = CheckpointFile::read(path_);
  ck.meta.erase("target_std");
  ck.write(path_);
  expect_load_error("target_std");
  ck = CheckpointFile::read(path_);
  ck.set_string("config.backbone", "lstm");
  ck.set_floats("target_std", {1.f, 1.f});
  ck.write(path_);
  expect_load_error("backbone");
}

TEST_F(CheckpointTest, devices) {
  expect_load_error("unknown device 'tpu'", RuntimeOptions{"tpu", 1});
  try {
    auto dec = load_decoder(path_, RuntimeOptions{"cuda", 1});
    // Only reachable on a CUDA build with a GPU: it must then decode like the CPU.
    auto cpu = load_decoder(path_, {});
    const auto a = decode_dataset(*dec, data_), b = decode_dataset(*cpu, data_);
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4);
  } catch (const std::runtime_error& e) {
    const std::string msg = e.what();
    EXPECT_NE(
        msg.find(
            "device 'cuda' requested but this LibTorch build has no CUDA support / no GPU visible"),
        std::string::npos)
        << msg;
  }
}

TEST_F(CheckpointTest, write_is_atomic_and_reports_bad_directories) {
  EXPECT_FALSE(fs::exists(path_ + ".tmp"));
  for (const auto& entry : fs::directory_iterator(dir_.path())) {
    EXPECT_EQ(entry.path().filename(), "model.sfck");  // no temporary left behind
  }
  CheckpointFile ck;
  ck.kind = "possm";
  const std::string bad = (dir_.path() / "no_such_dir" / "x.sfck").string();
  try {
    ck.write(bad);
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos);
  }
}

// A container-version-1 checkpoint as the first writer (with its own FNV-1a loop) wrote it: the
// reader must keep reading it and the writer must keep producing exactly these bytes, checksum
// included (core/checksum.h explains its unusual FNV offset basis).
constexpr uint8_t kGoldenCheckpoint[] = {
    0x53, 0x50, 0x4b, 0x46, 0x4c, 0x57, 0x43, 0x4b, 0x01, 0x00, 0x00, 0x00, 0x5d, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x72, 0x69, 0x64, 0x67, 0x65, 0x02, 0x00, 0x00,
    0x00, 0x02, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x61, 0x6c, 0x70, 0x68, 0x61, 0x03, 0x00,
    0x00, 0x00, 0x30, 0x2e, 0x35, 0x05, 0x00, 0x00, 0x00, 0x75, 0x6e, 0x69, 0x74, 0x73, 0x07, 0x00,
    0x00, 0x00, 0x31, 0x3a, 0x30, 0x2c, 0x32, 0x3a, 0x31, 0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x01, 0x02, 0xff, 0x84, 0x6a, 0x09, 0x35, 0x6d, 0xaf, 0xe5, 0x41,
};

CheckpointFile golden_checkpoint() {
  CheckpointFile ck;
  ck.kind = "ridge";
  ck.kind_version = 2;
  ck.meta["alpha"] = "0.5";
  ck.meta["units"] = "1:0,2:1";
  ck.payload = std::string("\x00\x01\x02\xff", 4);
  return ck;
}

TEST_F(CheckpointTest, reads_and_writes_the_golden_version_1_file) {
  const std::string golden = dir_.file("golden.sfck");
  {
    std::ofstream out(golden, std::ios::binary);
    out.write(reinterpret_cast<const char*>(kGoldenCheckpoint), sizeof kGoldenCheckpoint);
  }
  const CheckpointFile read = CheckpointFile::read(golden);
  const CheckpointFile expected = golden_checkpoint();
  EXPECT_EQ(read.kind, expected.kind);
  EXPECT_EQ(read.kind_version, expected.kind_version);
  EXPECT_EQ(read.meta, expected.meta);
  EXPECT_EQ(read.payload, expected.payload);

  expected.write(path_);
  EXPECT_EQ(bytes(), std::string(reinterpret_cast<const char*>(kGoldenCheckpoint),
                                 sizeof kGoldenCheckpoint));
}

}  // namespace
}  // namespace spikeflow::models
