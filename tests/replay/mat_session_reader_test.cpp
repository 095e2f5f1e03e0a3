#include "replay/mat_session_reader.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <stdexcept>

#include "core/file_check.h"
#include "nwb_test_util.h"
#include "replay/session_file.h"
#include "test_util.h"

namespace spikeflow::replay {
namespace {

using testing::MatTrial;
using testing::TempDir;
constexpr int64_t kBinNs = 50'000'000;

std::string read_error(const std::string& path, const MatReadOptions& o = MatReadOptions{}) {
  try {
    read_mat_session(path, o);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return {};
}

void expect_small_session(const Session& s, const std::vector<MatTrial>& trials) {
  ASSERT_EQ(s.num_units(), 3u);
  EXPECT_EQ(s.units[0], (core::UnitKey{1, 1}));
  EXPECT_EQ(s.units[1], (core::UnitKey{1, 2}));
  EXPECT_EQ(s.units[2], (core::UnitKey{7, 1}));
  ASSERT_EQ(s.trials.size(), 3u);
  EXPECT_EQ(s.trials[0].start_ns, 0);
  EXPECT_EQ(s.trials[0].end_ns, 4 * kBinNs);
  EXPECT_EQ(s.trials[1].start_ns, 4 * kBinNs);
  EXPECT_EQ(s.trials[2].end_ns, 15 * kBinNs);
  EXPECT_EQ(s.trials[0].condition, 0);
  EXPECT_EQ(s.trials[1].condition, 3);
  EXPECT_EQ(s.trials[2].condition, 6);
  EXPECT_EQ(s.start_ns, 0);
  EXPECT_EQ(s.end_ns, 15 * kBinNs);
  EXPECT_EQ(s.behavior_names, (std::vector<std::string>{"vx", "vy"}));
  ASSERT_EQ(s.behavior_t_ns.size(), 15u);
  EXPECT_EQ(s.behavior_t_ns[0], kBinNs / 2);
  EXPECT_EQ(s.behavior_t_ns[5], 5 * kBinNs + kBinNs / 2);
  // bin 5 of the concatenation = trial 1, bin 1: vx = 101, vy = -101
  EXPECT_EQ(s.behavior[10], 101.0f);
  EXPECT_EQ(s.behavior[11], -101.0f);
  size_t expected = 0;
  for (const auto& t : trials)
    expected += static_cast<size_t>(std::accumulate(t.spikes.begin(), t.spikes.end(), 0.0));
  EXPECT_EQ(s.num_spikes(), expected);
}

TEST(MatSessionReaderTest, reads_a_small_v5_file_written_with_matio) {
  TempDir dir;
  const auto trials = testing::small_trials();
  const std::string path = dir.file("small_v5.mat");
  testing::write_trial_mat(path, MAT_FT_MAT5, "trial_data", trials);
  const Session s = read_mat_session(path, MatReadOptions{});
  expect_small_session(s, trials);
  // Seeded expansion: same seed same times, other seed other times, same counts.
  EXPECT_EQ(read_mat_session(path, MatReadOptions{}).spike_times_ns, s.spike_times_ns);
  MatReadOptions other;
  other.expansion_seed = 99;
  const Session s2 = read_mat_session(path, other);
  EXPECT_NE(s2.spike_times_ns, s.spike_times_ns);
  EXPECT_EQ(s2.num_spikes(), s.num_spikes());
  // load_session dispatches .mat to this reader.
  EXPECT_EQ(load_session(path).spike_times_ns, s.spike_times_ns);
}

TEST(MatSessionReaderTest, reads_a_small_v73_file_written_with_matio) {
  TempDir dir;
  const auto trials = testing::small_trials();
  const std::string path = dir.file("small_v73.mat");
  testing::write_trial_mat(path, MAT_FT_MAT73, "trial_data", trials);
  const Session s = read_mat_session(path, MatReadOptions{});
  expect_small_session(s, trials);
  TempDir dir5;
  testing::write_trial_mat(dir5.file("v5.mat"), MAT_FT_MAT5, "trial_data", trials);
  EXPECT_EQ(read_mat_session(dir5.file("v5.mat"), MatReadOptions{}).spike_times_ns,
            s.spike_times_ns);
}

TEST(MatSessionReaderTest, missing_variable_names_file_and_variable) {
  TempDir dir;
  const std::string path = dir.file("other.mat");
  testing::write_trial_mat(path, MAT_FT_MAT5, "td", testing::small_trials());
  const std::string msg = read_error(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("variable 'trial_data' not found"), std::string::npos) << msg;
  EXPECT_NE(msg.find("td"), std::string::npos) << msg;  // lists what is there
  MatReadOptions o;
  o.variable = "td";
  o.velocity_field = "velocity";
  const std::string msg2 = read_error(path, o);
  EXPECT_NE(msg2.find("field 'velocity' missing"), std::string::npos) << msg2;
}

TEST(MatSessionReaderTest, mismatched_lengths_units_and_nan_are_all_reported) {
  TempDir dir;
  auto trials = testing::small_trials();
  trials[0].vel_rows = 3;  // T = 4 in M1_spikes
  trials[0].vel.resize(6);
  trials[1].vel[2] = NAN;
  trials[2].guide_rows = 2;  // differs from trial 1's guide
  trials[2].guide = {1, 1, 1, 2};
  const std::string path = dir.file("bad.mat");
  testing::write_trial_mat(path, MAT_FT_MAT5, "trial_data", trials);
  const std::string msg = read_error(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("trial_data'(1).vel has 3 rows but M1_spikes has 4"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("'(2).vel has 1 NaN"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'(3).M1_unit_guide differs"), std::string::npos) << msg;

  auto t2 = testing::small_trials();
  for (auto& t : t2) {
    t.guide_rows = 2;
    t.guide = {1, 1, 1, 2};
  }
  testing::write_trial_mat(path, MAT_FT_MAT5, "trial_data", t2);
  EXPECT_NE(read_error(path).find("unit count mismatch"), std::string::npos) << read_error(path);
}

TEST(MatSessionReaderTest, non_mat_file_is_a_clear_error) {
  TempDir dir;
  const std::string path = dir.file("x.mat");
  { std::ofstream(path) << "not a mat file at all"; }
  const std::string msg = read_error(path);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(read_error(dir.file("absent.mat")).find("absent.mat: no such MAT file"),
            std::string::npos);
}

// The signatures core::sniff_format knows, checked against what libmatio really writes.
TEST(MatSessionReaderTest, matio_files_sniff_as_mat_and_a_renamed_one_still_loads) {
  TempDir dir;
  const auto trials = testing::small_trials();
  testing::write_trial_mat(dir.file("v5.mat"), MAT_FT_MAT5, "trial_data", trials);
  testing::write_trial_mat(dir.file("v73.mat"), MAT_FT_MAT73, "trial_data", trials);
  EXPECT_EQ(core::sniff_file(dir.file("v5.mat")), core::FileFormat::kMatV5);
  EXPECT_EQ(core::sniff_file(dir.file("v73.mat")), core::FileFormat::kMatV73);
  // Content decides, not the name: a v7.3 MAT file named .nwb is HDF5, but read as MAT.
  std::filesystem::copy_file(dir.file("v73.mat"), dir.file("v73.nwb"));
  EXPECT_EQ(load_session(dir.file("v73.nwb")).num_spikes(),
            read_mat_session(dir.file("v73.mat")).num_spikes());
}

// An HDF5 file without MATLAB's header, named .mat, is said to be that (not reported with the
// NWB reader's wording about missing NWB groups), by the reader and by load_session.
TEST(MatSessionReaderTest, hdf5_without_matlab_header_is_named_for_what_it_is) {
  TempDir dir;
  const std::string path = dir.file("x.mat");
  {
    replay::testing::H5Builder h5(path);
    h5.doubles("/units/spike_times", {0.1, 0.2});
  }
  EXPECT_EQ(core::sniff_file(path), core::FileFormat::kHdf5);
  for (auto read : {+[](const std::string& p) { return read_mat_session(p); },
                    +[](const std::string& p) { return load_session(p); }}) {
    try {
      read(path);
      ADD_FAILURE() << "no error";
    } catch (const core::InputFileError& e) {
      EXPECT_EQ(std::string(e.what()),
                path +
                    ": is an HDF5 file without MATLAB's header, so not a MAT file "
                    "(an NWB file? name it .nwb)");
    }
  }
  std::filesystem::create_directory(dir.file("d.mat"));
  EXPECT_NE(read_error(dir.file("d.mat")).find("d.mat: is a directory, not a MAT file"),
            std::string::npos)
      << read_error(dir.file("d.mat"));
}

TEST(MatSessionReaderTest, shared_center_out_recording) {
  const std::string path = testing::shared_mat_path();
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "shared recording absent: " << path;
  const auto t0 = std::chrono::steady_clock::now();
  const Session s = read_mat_session(path, MatReadOptions{});
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("read_mat_session(center_out_data.mat): %.1f ms, %zu spikes\n", ms, s.num_spikes());
  RecordProperty("mat_read_ms", std::to_string(ms));
  EXPECT_EQ(s.num_units(), 84u);
  EXPECT_EQ(s.trials.size(), 286u);
  EXPECT_EQ(s.behavior_t_ns.size(), 22263u);
  EXPECT_EQ(s.end_ns, 22263 * kBinNs);
  EXPECT_EQ(s.units[0], (core::UnitKey{1, 1}));
  EXPECT_EQ(s.units[1], (core::UnitKey{1, 2}));
  EXPECT_EQ(s.trials[0].condition, 1);  // target_direction pi/4
  std::vector<int> per_condition(8, 0);
  for (const auto& t : s.trials) {
    ASSERT_GE(t.condition, 0);
    ASSERT_LT(t.condition, 8);
    ++per_condition[static_cast<size_t>(t.condition)];
  }
  for (int c : per_condition) EXPECT_GT(c, 10);
  const auto counts = testing::read_concatenated_counts(path, "trial_data", "M1_spikes");
  size_t total = 0;
  for (const auto& row : counts)
    total += static_cast<size_t>(std::accumulate(row.begin(), row.end(), 0));
  EXPECT_EQ(s.num_spikes(), total);
  // Round trip through the session file keeps it exactly.
  TempDir dir;
  write_session_file(s, dir.file("center_out.sfs"));
  EXPECT_EQ(read_session_file(dir.file("center_out.sfs")).spike_times_ns, s.spike_times_ns);
}

}  // namespace
}  // namespace spikeflow::replay
