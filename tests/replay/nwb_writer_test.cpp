// The NWB export (replay/nwb_writer.h) read back by spikeflow's own NWB reader: units, channels,
// unit codes, spike times to the nanosecond, behaviour and trials; plus the NWB attributes pynwb
// looks for, read straight through libhdf5.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <string>
#include <vector>

#include "replay/nwb_session_reader.h"
#include "replay/nwb_writer.h"
#include "replay/recording_file.h"
#include "replay/session.h"
#include "tests/common/test_support.h"

namespace spikeflow::replay {
namespace {

std::string string_attr(hid_t file, const std::string& obj, const std::string& name) {
  const hid_t a = H5Aopen_by_name(file, obj.c_str(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT);
  if (a < 0) return "<missing>";
  const hid_t type = H5Aget_type(a);
  char* value = nullptr;
  std::string out = "<not a string>";
  if (H5Tget_class(type) == H5T_STRING && H5Tis_variable_str(type) > 0 &&
      H5Aread(a, type, &value) >= 0 && value) {
    out = value;
    H5free_memory(value);
  }
  H5Tclose(type);
  H5Aclose(a);
  return out;
}

Recording small_recording() {
  Recording r;
  r.created_unix_ns = 1'700'000'000'123'456'789;
  r.config = "chunking: {width_ms: 50}\n";
  r.model = "ridge test";
  r.model_identity = "sha256:abc";
  r.units = {{3, 1}, {3, 2}, {7, 1}};
  core::EventBatch b1;
  b1.events = {{1'000'000'001, 3, 1, 0}, {1'000'000'002, 7, 1, 0}, {1'049'999'999, 3, 2, 0}};
  core::EventBatch tick;  // deadline-tick marker: no events
  tick.device_time_ns = -2;
  core::EventBatch b2;
  // Out of order within the unit, and a unit outside the unit map (channel 9, code 1).
  b2.events = {{3'600'000'000'007, 3, 1, 0}, {1'000'000'000, 3, 1, 0}, {2'000'000'000, 9, 1, 0}};
  r.batches = {b1, tick, b2};
  for (int i = 0; i < 3; ++i) {
    core::Prediction p;
    p.seq = i;
    p.start_ns = 1'000'000'000 + i * 50'000'000;
    p.end_ns = p.start_ns + 50'000'000;
    p.output_dim = 2;
    p.values = {0.5f * static_cast<float>(i), -1.0f};
    p.timing.publish_ns = 42 + i;
    r.predictions.push_back(p);
  }
  return r;
}

TEST(NwbWriterTest, units_spike_times_and_channels_read_back_exactly) {
  testing::TempDir dir("nwbw");
  const Recording r = small_recording();
  Session s;
  s.behavior_names = {"vx", "vy"};
  s.behavior_t_ns = {1'000'000'000, 1'010'000'000};
  s.behavior = {1.5f, -2.0f, 3.0f, 4.0f};
  s.trials = {{1'000'000'000, 1'040'000'000, 3}};
  const auto st = write_nwb_recording(dir.file("run.nwb"), r, &s);
  EXPECT_EQ(st.units, 4u);
  EXPECT_EQ(st.unmapped_units, 1u);
  EXPECT_EQ(st.spikes, 6u);
  EXPECT_EQ(st.electrodes, 10u);
  EXPECT_EQ(st.predictions, 3u);
  EXPECT_EQ(st.renumbered_units, 0u);

  NwbReadOptions o;
  o.condition_column = "condition";
  NwbReadStats rs;
  const Session back = read_nwb_session(dir.file("run.nwb"), o, &rs);
  EXPECT_TRUE(rs.channels_from_electrodes);
  ASSERT_EQ(back.units.size(), 4u);
  EXPECT_EQ(back.units[0], (core::UnitKey{3, 1}));
  EXPECT_EQ(back.units[1], (core::UnitKey{3, 2}));
  EXPECT_EQ(back.units[2], (core::UnitKey{7, 1}));
  EXPECT_EQ(back.units[3], (core::UnitKey{9, 1}));
  EXPECT_EQ(back.spike_times_ns[0],
            (std::vector<int64_t>{1'000'000'000, 1'000'000'001, 3'600'000'000'007}));
  EXPECT_EQ(back.spike_times_ns[1], (std::vector<int64_t>{1'049'999'999}));
  EXPECT_EQ(back.spike_times_ns[3], (std::vector<int64_t>{2'000'000'000}));
  EXPECT_EQ(back.behavior_t_ns, s.behavior_t_ns);
  EXPECT_EQ(back.behavior, s.behavior);
  ASSERT_EQ(back.trials.size(), 1u);
  EXPECT_EQ(back.trials[0].start_ns, 1'000'000'000);
  EXPECT_EQ(back.trials[0].end_ns, 1'040'000'000);
  EXPECT_EQ(back.trials[0].condition, 3);
}

// The run's extent (first chunk start to the last device time seen, past the last spike) is
// written as one epoch, and the reader's session spans it: a replay of the file closes the same
// last chunk the run did.
TEST(NwbWriterTest, the_run_extent_is_an_epoch_the_reader_honours) {
  testing::TempDir dir("nwbw");
  Recording r = small_recording();
  r.predictions[0].start_ns = 950'000'000;  // the first chunk began before the first spike
  r.batches[2].device_time_ns = 3'600'100'000'000;  // the run went on after its last spike
  const auto st = write_nwb_recording(dir.file("run.nwb"), r, nullptr);
  EXPECT_EQ(st.epochs, 1u);
  EXPECT_EQ(st.run_start_ns, 950'000'000);
  EXPECT_EQ(st.run_stop_ns, 3'600'100'000'000);
  NwbReadOptions o;
  o.behavior_name.clear();
  NwbReadStats rs;
  const Session back = read_nwb_session(dir.file("run.nwb"), o, &rs);
  EXPECT_EQ(rs.epochs, 1u);
  EXPECT_EQ(back.start_ns, 950'000'000);
  EXPECT_EQ(back.end_ns, 3'600'100'000'000);
  // Without the epochs table (a generic NWB file) the extent is the data's, as before.
  o.epochs_table.clear();
  const Session plain = read_nwb_session(dir.file("run.nwb"), o, &rs);
  EXPECT_EQ(plain.start_ns, 1'000'000'000);
  EXPECT_EQ(plain.end_ns, 3'600'000'000'007 + 1);
}

TEST(NwbWriterTest, root_and_tables_carry_the_attributes_pynwb_reads) {
  testing::TempDir dir("nwbw");
  NwbWriteOptions o;
  o.identifier = "run-1";
  write_nwb_recording(dir.file("run.nwb"), small_recording(), nullptr, o);
  const hid_t f = H5Fopen(dir.file("run.nwb").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(f, 0);
  EXPECT_EQ(string_attr(f, "/", "neurodata_type"), "NWBFile");
  EXPECT_EQ(string_attr(f, "/", "namespace"), "core");
  EXPECT_EQ(string_attr(f, "/", "nwb_version").substr(0, 2), "2.");
  EXPECT_EQ(string_attr(f, "/", "object_id").size(), 36u);
  EXPECT_EQ(string_attr(f, "/units", "neurodata_type"), "Units");
  EXPECT_EQ(string_attr(f, "/units/spike_times_index", "neurodata_type"), "VectorIndex");
  EXPECT_EQ(string_attr(f, "/units/id", "namespace"), "hdmf-common");
  EXPECT_EQ(string_attr(f, "/general/extracellular_ephys/electrodes", "neurodata_type"),
            "DynamicTable");
  EXPECT_EQ(string_attr(f, "/processing/spikeflow/predictions", "neurodata_type"), "TimeSeries");
  EXPECT_EQ(string_attr(f, "/processing/spikeflow/predictions/timestamps", "unit"), "seconds");
  EXPECT_NE(string_attr(f, "/processing/spikeflow/predictions", "comments").find("sha256:abc"),
            std::string::npos);
  for (const char* g :
       {"/acquisition", "/analysis", "/stimulus/presentation", "/stimulus/templates",
        "/general/devices/spikeflow_device", "/processing/spikeflow/prediction_timing/publish_ns",
        "/general/data_collection", "/session_start_time", "/file_create_date"}) {
    EXPECT_GT(H5Lexists(f, g, H5P_DEFAULT), 0) << g;
  }
  // No session: no behaviour module and no trials; the run's extent is there all the same.
  EXPECT_EQ(string_attr(f, "/intervals/epochs", "neurodata_type"), "TimeIntervals");
  EXPECT_EQ(string_attr(f, "/intervals/epochs/tags_index", "neurodata_type"), "VectorIndex");
  EXPECT_EQ(H5Lexists(f, "/intervals/trials", H5P_DEFAULT), 0);
  EXPECT_EQ(H5Lexists(f, "/processing/behavior", H5P_DEFAULT), 0);
  H5Fclose(f);
}

TEST(NwbWriterTest, codes_the_reader_renumbers_are_counted) {
  testing::TempDir dir("nwbw");
  Recording r = small_recording();
  r.units = {{3, 0}, {3, 5}, {7, 1}};  // unsorted code 0 and a gap: the reader numbers them 1, 2
  r.batches.clear();
  const auto st = write_nwb_recording(dir.file("run.nwb"), r, nullptr);
  EXPECT_EQ(st.renumbered_units, 2u);
  EXPECT_EQ(st.spikes, 0u);
}

TEST(NwbWriterTest, an_unwritable_path_names_the_file) {
  try {
    write_nwb_recording("/nonexistent-dir/run.nwb", small_recording(), nullptr);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/run.nwb"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace spikeflow::replay
