#include "replay/nwb_session_reader.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "nwb_test_util.h"
#include "replay/session_file.h"
#include "replay/synth_session.h"
#include "test_util.h"

namespace spikeflow::replay {
namespace {

using testing::NwbFixture;
using testing::TempDir;
constexpr int64_t kS = 1'000'000'000;

std::string read_error(const std::string& path, const NwbReadOptions& o = NwbReadOptions{}) {
  try {
    read_nwb_session(path, o);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return {};
}

// Writes the fixture and returns the reader's error message (empty when it read fine).
std::string error_for(const NwbFixture& f, const NwbReadOptions& o = NwbReadOptions{}) {
  TempDir dir;
  const std::string path = dir.file("bad.nwb");
  testing::write_nwb(path, f);
  return read_error(path, o);
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(NwbSessionReaderTest, reads_a_small_file_written_with_libhdf5) {
  TempDir dir;
  const std::string path = dir.file("small.nwb");
  testing::write_nwb(path, NwbFixture{});
  NwbReadOptions o;
  o.condition_column = "target_id";
  NwbReadStats st;
  const Session s = read_nwb_session(path, o, &st);

  ASSERT_EQ(s.num_units(), 4u);
  EXPECT_EQ(s.units[0], (core::UnitKey{4, 1}));  // electrode row 4, first unit there
  EXPECT_EQ(s.units[1], (core::UnitKey{4, 2}));  // second unit on row 4
  EXPECT_EQ(s.units[2], (core::UnitKey{7, 1}));
  EXPECT_EQ(s.units[3], (core::UnitKey{9, 1}));
  EXPECT_EQ(s.spike_times_ns[0], (std::vector<int64_t>{100'000'000, 250'000'000, 1'500'000'000}));
  EXPECT_EQ(s.spike_times_ns[1], (std::vector<int64_t>{200'000'000}));
  EXPECT_TRUE(s.spike_times_ns[2].empty());
  EXPECT_EQ(s.spike_times_ns[3], (std::vector<int64_t>{50'000'000, 750'000'000}));

  EXPECT_EQ(s.behavior_names, (std::vector<std::string>{"vx", "vy"}));
  EXPECT_EQ(s.behavior_t_ns, (std::vector<int64_t>{0, kS / 2, kS, 3 * kS / 2, 2 * kS}));
  ASSERT_EQ(s.behavior.size(), 10u);
  for (size_t i = 0; i < 5; ++i) {  // raw 10i, -10i scaled by conversion 0.1, offset 1
    EXPECT_FLOAT_EQ(s.behavior[2 * i], static_cast<float>(i) + 1.0f);
    EXPECT_FLOAT_EQ(s.behavior[2 * i + 1], -static_cast<float>(i) + 1.0f);
  }
  ASSERT_EQ(s.trials.size(), 2u);
  EXPECT_EQ(s.trials[0].start_ns, 0);
  EXPECT_EQ(s.trials[0].end_ns, 900'000'000);
  EXPECT_EQ(s.trials[0].condition, 3);
  EXPECT_EQ(s.trials[1].start_ns, kS);
  EXPECT_EQ(s.trials[1].end_ns, 2 * kS);
  EXPECT_EQ(s.trials[1].condition, 5);
  EXPECT_EQ(s.start_ns, 0);
  EXPECT_EQ(s.end_ns, 2 * kS + 1);  // last behaviour sample + 1 ns

  EXPECT_EQ(st.units, 4u);
  EXPECT_EQ(st.empty_units, 1u);  // a warning, not an error
  EXPECT_EQ(st.spikes, 6u);
  EXPECT_EQ(st.behavior_samples, 5u);
  EXPECT_EQ(st.trials, 2u);
  EXPECT_TRUE(st.channels_from_electrodes);
  EXPECT_EQ(st.units_resorted, 0u);

  // load_session: HDF5 signature -> NWB with the default options (hand_vel, no condition).
  const Session l = load_session(path);
  EXPECT_EQ(l.spike_times_ns, s.spike_times_ns);
  EXPECT_EQ(l.behavior, s.behavior);
  EXPECT_EQ(l.trials[1].condition, 0);
  // By content, whatever the extension.
  std::filesystem::copy_file(path, dir.file("renamed.bin"));
  EXPECT_EQ(load_session(dir.file("renamed.bin")).spike_times_ns, s.spike_times_ns);
}

TEST(NwbSessionReaderTest, starting_time_rate_and_channels_from_unit_ids) {
  NwbFixture f;
  f.ids = {5, 9};
  f.spikes_s = {{0.6, 0.7}, {0.65}};
  f.electrodes.reset();
  f.electrode_table_rows = -1;
  f.behavior_group = "/processing/behavior/hand_vel";  // directly in the module
  f.behavior = {1, 2, 3, 4};
  f.behavior_dims = {4};  // rank 1: one column
  f.behavior_type = H5T_IEEE_F32LE;
  f.timestamps.reset();
  f.starting_time = 0.5;
  f.rate = 100.0;
  f.conversion.reset();
  f.offset.reset();
  f.trials = false;
  TempDir dir;
  const std::string path = dir.file("rate.nwb");
  testing::write_nwb(path, f);
  NwbReadStats st;
  const Session s = read_nwb_session(path, NwbReadOptions{}, &st);
  EXPECT_FALSE(st.channels_from_electrodes);
  ASSERT_EQ(s.num_units(), 2u);
  EXPECT_EQ(s.units[0], (core::UnitKey{5, 1}));
  EXPECT_EQ(s.units[1], (core::UnitKey{9, 1}));
  EXPECT_EQ(s.behavior_names, (std::vector<std::string>{"hand_vel"}));
  EXPECT_EQ(s.behavior_t_ns,
            (std::vector<int64_t>{500'000'000, 510'000'000, 520'000'000, 530'000'000}));
  EXPECT_EQ(s.behavior, (std::vector<float>{1, 2, 3, 4}));
  EXPECT_TRUE(s.trials.empty());
  EXPECT_EQ(s.start_ns, 500'000'000);
  EXPECT_EQ(s.end_ns, 700'000'001);

  NwbReadOptions named;
  named.behavior_names = {"speed"};
  EXPECT_EQ(read_nwb_session(path, named).behavior_names, (std::vector<std::string>{"speed"}));
  named.behavior_names = {"a", "b"};
  EXPECT_TRUE(contains(read_error(path, named), "1 columns but 2 behaviour names"))
      << read_error(path, named);
  NwbReadOptions none;
  none.behavior_name.clear();
  EXPECT_EQ(read_nwb_session(path, none).behavior_dim(), 0);
}

TEST(NwbSessionReaderTest, ragged_electrodes_use_each_units_first_row) {
  NwbFixture f;
  f.electrodes = std::vector<int64_t>{2, 3, 2, 5, 6, 8};
  f.electrodes_index = std::vector<int64_t>{2, 3, 5, 6};  // {2,3} {2} {5,6} {8}
  TempDir dir;
  testing::write_nwb(dir.file("ragged.nwb"), f);
  const Session s = read_nwb_session(dir.file("ragged.nwb"));
  EXPECT_EQ(s.units[0], (core::UnitKey{2, 1}));
  EXPECT_EQ(s.units[1], (core::UnitKey{2, 2}));
  EXPECT_EQ(s.units[2], (core::UnitKey{5, 1}));
  EXPECT_EQ(s.units[3], (core::UnitKey{8, 1}));

  f.electrodes_index = std::vector<int64_t>{2, 2, 5, 6};  // unit 1 has none
  EXPECT_TRUE(contains(error_for(f), "unit 1 has no electrode")) << error_for(f);
  f.electrodes_index = std::vector<int64_t>{2, 3, 5, 7};
  EXPECT_TRUE(contains(error_for(f), "/units/electrodes_index: entry 3 (7) is past the end"))
      << error_for(f);
}

TEST(NwbSessionReaderTest, behaviour_is_found_by_name_anywhere_in_the_module) {
  NwbFixture f;
  f.behavior_group = "/processing/behavior/Fingers/Deeper/finger_vel";
  TempDir dir;
  const std::string path = dir.file("finger.nwb");
  testing::write_nwb(path, f);
  NwbReadOptions o;
  o.behavior_name = "finger_vel";
  EXPECT_EQ(read_nwb_session(path, o).behavior_t_ns.size(), 5u);
  // The default name is absent: the message lists the TimeSeries that are there.
  const std::string msg = read_error(path);
  EXPECT_TRUE(contains(msg, path + ": /processing/behavior: no TimeSeries named 'hand_vel'"))
      << msg;
  EXPECT_TRUE(contains(msg, "Fingers/Deeper/finger_vel")) << msg;
  o.behavior_module = "/processing/ecephys";
  EXPECT_TRUE(contains(read_error(path, o), "/processing/ecephys: missing behaviour module"))
      << read_error(path, o);
}

TEST(NwbSessionReaderTest, unsorted_spike_times_are_sorted_and_counted) {
  NwbFixture f;
  f.spikes_s = {{0.3, 0.1, 0.2}, {0.2}, {}, {0.05, 0.75}};
  TempDir dir;
  testing::write_nwb(dir.file("unsorted.nwb"), f);
  NwbReadStats st;
  const Session s = read_nwb_session(dir.file("unsorted.nwb"), NwbReadOptions{}, &st);
  EXPECT_EQ(s.spike_times_ns[0], (std::vector<int64_t>{100'000'000, 200'000'000, 300'000'000}));
  EXPECT_EQ(st.units_resorted, 1u);
}

TEST(NwbSessionReaderTest, missing_or_non_hdf5_files_are_clear_errors) {
  TempDir dir;
  EXPECT_TRUE(contains(read_error(dir.file("absent.nwb")), "absent.nwb: no such NWB file"));
  const std::string junk = dir.file("junk.nwb");
  { std::ofstream(junk) << "definitely not hdf5"; }
  EXPECT_TRUE(contains(read_error(junk), junk + ": not an HDF5 file")) << read_error(junk);
  // load_session goes by extension when the content has no known signature.
  try {
    load_session(junk);
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_TRUE(contains(e.what(), "not an HDF5 file")) << e.what();
  }
}

TEST(NwbSessionReaderTest, unit_table_errors_name_the_file_and_dataset) {
  TempDir dir;
  const std::string path = dir.file("nounits.nwb");
  {
    testing::H5Builder b(path);
    b.ints("/units/id", {0});
  }
  std::string msg = read_error(path);
  EXPECT_TRUE(contains(msg, path + ": /units/spike_times: missing dataset")) << msg;

  NwbFixture f;
  f.spike_times_2d = true;
  msg = error_for(f);
  EXPECT_TRUE(contains(msg, "/units/spike_times: expected rank 1, found rank 2 (shape (6 x 1))"))
      << msg;

  f = NwbFixture{};
  f.index_override = std::vector<int64_t>{3, 1, 4, 6};
  msg = error_for(f);
  EXPECT_TRUE(contains(msg, "/units/spike_times_index: not monotonic: entry 1 is 1, after 3"))
      << msg;

  f.index_override = std::vector<int64_t>{3, 4, 4, 9};
  msg = error_for(f);
  EXPECT_TRUE(contains(msg,
                       "/units/spike_times_index: entry 3 (9) is past the end of "
                       "/units/spike_times (6 values)"))
      << msg;

  f.index_override = std::vector<int64_t>{3, 4, 4, 5};
  msg = error_for(f);
  EXPECT_TRUE(contains(msg, "/units/spike_times_index: ends at 5 but /units/spike_times has 6"))
      << msg;

  f.index_override = std::vector<int64_t>{3, 4, 6};
  msg = error_for(f);
  EXPECT_TRUE(contains(msg, "/units/spike_times_index: has 3 entries but /units/id has 4 units"))
      << msg;

  f = NwbFixture{};
  f.electrodes = std::vector<int64_t>{4, 4, 7, 12};
  msg = error_for(f);
  EXPECT_TRUE(contains(msg,
                       "/units/electrodes: unit 3 names electrode row 12, outside the "
                       "electrodes table (10 rows)"))
      << msg;

  f = NwbFixture{};
  f.spikes_s[1] = {NAN};
  msg = error_for(f);
  EXPECT_TRUE(contains(msg, "/units/spike_times: unit 1 (id 1) has a non-finite")) << msg;
}

TEST(NwbSessionReaderTest, behaviour_errors_name_the_file_and_dataset) {
  const std::string data = "/processing/behavior/Velocity/hand_vel/data";
  const std::string ts = "/processing/behavior/Velocity/hand_vel/timestamps";
  NwbFixture f;
  f.behavior_dims = {5, 2, 1};
  std::string msg = error_for(f);
  EXPECT_TRUE(contains(msg, data + ": expected shape (T) or (T x D), found (5 x 2 x 1)")) << msg;

  f = NwbFixture{};
  f.behavior[3] = NAN;
  f.behavior[6] = NAN;
  f.behavior[7] = NAN;
  msg = error_for(f);
  EXPECT_TRUE(contains(msg, data + ": 3 NaN/inf values (first at sample 1, column 1)")) << msg;

  f = NwbFixture{};
  f.timestamps = std::vector<double>{0.0, 0.5, 0.5, 1.5, 2.0};
  msg = error_for(f);
  EXPECT_TRUE(contains(msg, ts + ": timestamps not strictly increasing at index 2")) << msg;

  f.timestamps = std::vector<double>{0.0, 0.5, 1.0};
  msg = error_for(f);
  EXPECT_TRUE(contains(msg, ts + ": has 3 values but " + data + " has 5 samples")) << msg;

  f.timestamps.reset();
  msg = error_for(f);
  EXPECT_TRUE(contains(msg, "hand_vel: TimeSeries has neither 'timestamps' nor 'starting_time'"))
      << msg;

  f.starting_time = 0.0;  // no rate attribute
  msg = error_for(f);
  EXPECT_TRUE(contains(msg, "hand_vel/starting_time: missing attribute 'rate'")) << msg;

  // Two groups of the same name: ambiguous, both listed.
  TempDir dir;
  const std::string path = dir.file("twice.nwb");
  testing::write_nwb(path, NwbFixture{});
  {
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    const hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);
    const hid_t g =
        H5Gcreate2(file, "/processing/behavior/Other/hand_vel", lcpl, H5P_DEFAULT, H5P_DEFAULT);
    H5Gclose(g);
    H5Pclose(lcpl);
    H5Fclose(file);
  }
  msg = read_error(path);
  EXPECT_TRUE(contains(msg,
                       "'hand_vel' is ambiguous: /processing/behavior/Other/hand_vel, "
                       "/processing/behavior/Velocity/hand_vel"))
      << msg;
}

TEST(NwbSessionReaderTest, trial_errors_name_the_file_and_dataset) {
  NwbFixture f;
  NwbReadOptions o;
  o.condition_column = "cond_id";
  std::string msg = error_for(f, o);
  EXPECT_TRUE(contains(msg, "/intervals/trials/cond_id: missing dataset")) << msg;

  f.trial_stop = {0.9};
  msg = error_for(f);
  EXPECT_TRUE(contains(msg,
                       "/intervals/trials/stop_time: has 1 values but "
                       "/intervals/trials/start_time has 2"))
      << msg;

  f = NwbFixture{};
  f.trial_start = {0.0, 0.5};  // overlaps trial 0: Session::validate reports it, naming the file
  msg = error_for(f);
  EXPECT_TRUE(contains(msg, "bad.nwb (NWB): invalid session")) << msg;
  EXPECT_TRUE(contains(msg, "trials overlap")) << msg;
}

TEST(NwbSessionReaderTest, mat_v73_is_still_read_as_mat_by_load_session) {
  // A v7.3 MAT file is HDF5 behind a 512-byte MATLAB text header: the dispatcher must not take
  // it for NWB.
  TempDir dir;
  const std::string path = dir.file("v73.mat");
  testing::write_trial_mat(path, MAT_FT_MAT73, "trial_data", testing::small_trials());
  const Session s = load_session(path);
  EXPECT_EQ(s.num_units(), 3u);
  EXPECT_EQ(s.trials.size(), 3u);
}

TEST(NwbSessionReaderTest, synthetic_96_units_300_s_round_trip_and_timing) {
  const Session ref = synthesize_session(SynthOptions{});  // 96 units, 300 s
  TempDir dir;
  const std::string path = dir.file("synth.nwb");
  {
    testing::H5Builder b(path);
    std::vector<int64_t> ids;
    std::vector<double> flat;
    std::vector<int64_t> index;
    for (size_t u = 0; u < ref.num_units(); ++u) {
      ids.push_back(ref.units[u].channel);  // synth units are (i + 1, 1): channel = id
      for (int64_t t : ref.spike_times_ns[u]) flat.push_back(static_cast<double>(t) * 1e-9);
      index.push_back(static_cast<int64_t>(flat.size()));
    }
    b.ints("/units/id", ids);
    b.doubles("/units/spike_times", flat);
    b.ints("/units/spike_times_index", index);
    std::vector<double> ts;
    for (int64_t t : ref.behavior_t_ns) ts.push_back(static_cast<double>(t) * 1e-9);
    const std::vector<double> beh(ref.behavior.begin(), ref.behavior.end());
    b.doubles("/processing/behavior/Velocity/hand_vel/data", beh, {ts.size(), 2}, H5T_IEEE_F32LE);
    b.doubles("/processing/behavior/Velocity/hand_vel/timestamps", ts);
    std::vector<double> start, stop, cond;
    for (const auto& t : ref.trials) {
      start.push_back(static_cast<double>(t.start_ns) * 1e-9);
      stop.push_back(static_cast<double>(t.end_ns) * 1e-9);
      cond.push_back(t.condition);
    }
    b.doubles("/intervals/trials/start_time", start);
    b.doubles("/intervals/trials/stop_time", stop);
    b.doubles("/intervals/trials/condition", cond);
  }
  NwbReadOptions o;
  o.condition_column = "condition";
  const auto t0 = std::chrono::steady_clock::now();
  NwbReadStats st;
  const Session s = read_nwb_session(path, o, &st);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::printf("read_nwb_session(96 units x 300 s, %zu spikes, %zu behaviour samples): %.1f ms\n",
              st.spikes, st.behavior_samples, ms);
  RecordProperty("nwb_read_ms", std::to_string(ms));
  EXPECT_EQ(s.units, ref.units);
  EXPECT_EQ(s.spike_times_ns, ref.spike_times_ns);  // ns -> s (float64) -> ns is exact here
  EXPECT_EQ(s.behavior_t_ns, ref.behavior_t_ns);
  EXPECT_EQ(s.behavior, ref.behavior);
  ASSERT_EQ(s.trials.size(), ref.trials.size());
  for (size_t k = 0; k < s.trials.size(); ++k) {
    EXPECT_EQ(s.trials[k].start_ns, ref.trials[k].start_ns);
    EXPECT_EQ(s.trials[k].end_ns, ref.trials[k].end_ns);
    EXPECT_EQ(s.trials[k].condition, ref.trials[k].condition);
  }
}

// Found by nwb_session_reader_fuzz: a dataset whose dataspace claims far more elements than the
// file stores (~2^49; then 400 M with a storage size in the metadata larger than the file) made the
// reader allocate for all of them (bad_alloc, not an error naming the file). The inputs (byte 0:
// the harness's read options) stay in the fuzz corpus.
TEST(NwbSessionReaderTest, fuzz_regression_extent_larger_than_stored_bytes_is_an_error) {
  for (const char* name : {"regress-huge-extent.nwb", "regress-storage-size-lies.nwb"}) {
    SCOPED_TRACE(name);
    std::ifstream in(
        std::string(SPIKEFLOW_SOURCE_DIR) + "/tests/fuzz/corpus/nwb_session_reader_fuzz/" + name,
        std::ios::binary);
    const std::vector<char> crash((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
    ASSERT_GT(crash.size(), 1u);
    TempDir dir;
    const std::string path = dir.file("huge.nwb");
    std::ofstream(path, std::ios::binary)
        .write(crash.data() + 1, static_cast<std::streamsize>(crash.size() - 1));
    NwbReadOptions o;
    if (crash[0] & 1) o.condition_column = "target_id";
    if (crash[0] & 2) o.behavior_name = "";
    if (crash[0] & 4) o.behavior_names = {"a", "b"};
    try {
      read_nwb_session(path, o);
      FAIL() << "expected an error";
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("bytes stored"), std::string::npos) << e.what();
    }
  }
}

// Found by nwb_session_reader_fuzz (ASan stack overflow inside libhdf5): H5Lvisit recursed without
// end through a corrupt group that links back to itself while the reader searched for the
// behaviour group. The reader's own walk is bounded in depth and links. The input (byte 0: the
// harness's read options) stays in the fuzz corpus.
TEST(NwbSessionReaderTest, fuzz_regression_group_cycle_does_not_overflow_the_stack) {
  std::ifstream in(std::string(SPIKEFLOW_SOURCE_DIR) +
                       "/tests/fuzz/corpus/nwb_session_reader_fuzz/regress-group-cycle.nwb",
                   std::ios::binary);
  const std::vector<char> crash((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
  ASSERT_GT(crash.size(), 1u);
  TempDir dir;
  const std::string path = dir.file("cycle.nwb");
  std::ofstream(path, std::ios::binary)
      .write(crash.data() + 1, static_cast<std::streamsize>(crash.size() - 1));
  NwbReadOptions o;
  if (crash[0] & 1) o.condition_column = "target_id";
  if (crash[0] & 2) o.behavior_name = "";
  if (crash[0] & 4) o.behavior_names = {"a", "b"};
  try {
    const Session s = read_nwb_session(path, o);
    s.validate(path);
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

// Labs' files as the NWB schema lays them out (NeurodataWithoutBorders/nwb-schema @ 942672b):
// core/nwb.behavior.yaml — Position is a container of SpatialSeries (neurodata_type_inc
// TimeSeries, data T x D "x, y, z" positions), BehavioralTimeSeries a container of TimeSeries;
// core/nwb.file.yaml:8 — NWB 2.x keeps nwb_version as a root attribute.
testing::NwbFixture position_fixture() {
  testing::NwbFixture f;
  f.behavior_group = "/processing/behavior/Position/hand";
  // x = 2 t, y = -t at 100 Hz for 1 s (units: m; velocity (2, -1) m/s).
  f.behavior.clear();
  std::vector<double> ts;
  for (int i = 0; i < 100; ++i) {
    ts.push_back(i / 100.0);
    f.behavior.push_back(2.0 * i / 100.0);
    f.behavior.push_back(-1.0 * i / 100.0);
  }
  f.behavior_dims = {100, 2};
  f.timestamps = ts;
  f.conversion.reset();
  f.offset.reset();
  return f;
}

TEST(NwbBehaviourChoiceTest, spatial_series_in_position_by_container_name_with_derived_velocity) {
  TempDir dir;
  const std::string path = dir.file("pos.nwb");
  testing::write_nwb(path, position_fixture());
  {
    // Add the neurodata_type attributes pynwb writes.
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    ASSERT_GE(file, 0);
    for (auto [obj, type] : {std::pair{"/processing/behavior/Position", "Position"},
                             std::pair{"/processing/behavior/Position/hand", "SpatialSeries"}}) {
      const hid_t t = H5Tcopy(H5T_C_S1);
      H5Tset_size(t, H5T_VARIABLE);
      const hid_t sp = H5Screate(H5S_SCALAR);
      const hid_t a = H5Acreate_by_name(file, obj, "neurodata_type", t, sp, H5P_DEFAULT,
                                        H5P_DEFAULT, H5P_DEFAULT);
      const char* p = type;
      ASSERT_GE(H5Awrite(a, t, &p), 0);
      H5Aclose(a);
      H5Sclose(sp);
      H5Tclose(t);
    }
    H5Fclose(file);
  }
  // The default name is missing: the error says which series exist and how to pick one.
  try {
    read_nwb_session(path);
    FAIL() << "hand_vel does not exist";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("no TimeSeries named 'hand_vel'"), std::string::npos) << m;
    EXPECT_NE(m.find("/processing/behavior/Position/hand (SpatialSeries)"), std::string::npos) << m;
  }
  // Position as stored: columns x, y.
  NwbReadOptions o;
  o.behavior_name = "Position";  // the container: its only series
  NwbReadStats st;
  auto s = read_nwb_session(path, o, &st);
  EXPECT_EQ(st.behavior_path, "/processing/behavior/Position/hand");
  EXPECT_EQ(s.behavior_names, (std::vector<std::string>{"x", "y"}));
  EXPECT_FLOAT_EQ(s.behavior[2 * 50], 1.0f);
  // Velocity derived causally, no smoothing: exactly the slope from the second sample on.
  o.derive_velocity = true;
  o.velocity_smoothing_ms = 0;
  s = read_nwb_session(path, o, &st);
  EXPECT_TRUE(st.behavior_derived);
  EXPECT_EQ(s.behavior_names, (std::vector<std::string>{"vx", "vy"}));
  EXPECT_EQ(s.behavior[0], 0.0f);
  for (size_t i = 1; i < 100; ++i) {
    EXPECT_NEAR(s.behavior[2 * i], 2.0, 1e-3) << i;
    EXPECT_NEAR(s.behavior[2 * i + 1], -1.0, 1e-3) << i;
  }
  // With the 20 ms low-pass: rises towards the slope, never overshoots (causal); the tolerance is
  // float rounding of the positions divided by the 10 ms step.
  o.velocity_smoothing_ms = 20;
  s = read_nwb_session(path, o);
  for (size_t i = 2; i < 100; ++i) {
    EXPECT_GE(s.behavior[2 * i], s.behavior[2 * (i - 1)] - 1e-3f);
    EXPECT_LE(s.behavior[2 * i], 2.0f + 1e-3f);
  }
  EXPECT_NEAR(s.behavior[2 * 99], 2.0, 1e-3);
  // By absolute path too, and through load_session (what train / replay call).
  o.behavior_name = "/processing/behavior/Position/hand";
  EXPECT_EQ(load_session(path, o).behavior_dim(), 2u);
  o.behavior_name = "/processing/behavior/Nope";
  EXPECT_THROW(read_nwb_session(path, o), std::runtime_error);
}

TEST(NwbBehaviourChoiceTest, a_container_of_several_series_asks_which) {
  TempDir dir;
  const std::string path = dir.file("bts.nwb");
  auto f = position_fixture();
  f.behavior_group = "/processing/behavior/BehavioralTimeSeries/cursor";
  testing::write_nwb(path, f);
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  const hsize_t n = 3;
  const hid_t sp = H5Screate_simple(1, &n, nullptr);
  const hid_t ds = H5Dcreate2(file, "/processing/behavior/BehavioralTimeSeries/eye_data",
                              H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(ds, 0);
  H5Dclose(ds);
  H5Sclose(sp);
  H5Fclose(file);
  // eye_data is a dataset, not a series: the container's only series is cursor.
  NwbReadOptions o;
  o.behavior_name = "BehavioralTimeSeries";
  NwbReadStats st;
  read_nwb_session(path, o, &st);
  EXPECT_EQ(st.behavior_path, "/processing/behavior/BehavioralTimeSeries/cursor");
}

TEST(NwbBehaviourChoiceTest, nwb_1_files_are_refused_by_name) {
  TempDir dir;
  const std::string path = dir.file("old.nwb");
  {
    testing::H5Builder b(path);
    b.text("/nwb_version", "NWB-1.0.6");  // NWB 1.x: a root dataset, no /units table
    b.group("/processing");
  }
  try {
    read_nwb_session(path);
    FAIL() << "NWB 1.x must be refused";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("NWB 1.x is not supported"), std::string::npos) << m;
    EXPECT_EQ(m.find("/units/id"), std::string::npos) << m;
  }
  // A 2.x file carries the version as a root attribute and reads as before.
  const std::string v2 = dir.file("new.nwb");
  testing::write_nwb(v2, testing::NwbFixture{});
  EXPECT_NO_THROW(read_nwb_session(v2));
}

}  // namespace
}  // namespace spikeflow::replay
