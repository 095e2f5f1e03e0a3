// Recorder: a real file in a temporary directory, read back with the production reader. Its
// queue is bounded: a full queue drops (counted, logged), record() never blocks, and what was
// not dropped is in the file, in order.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "pipeline/recorder.h"
#include "replay/recording_file.h"
#include "tests/common/test_support.h"
#include "tests/pipeline/log_capture.h"

namespace spikeflow::pipeline {
namespace {

const std::vector<core::UnitKey> kUnits{{1, 1}, {1, 2}, {7, 0}};

core::EventBatch batch(int64_t id, int events = 2) {
  core::EventBatch b;
  b.arrival_host_ns = 1000 + id;
  b.device_time_ns = id;  // identifies the batch in the file
  for (int i = 0; i < events; ++i) b.events.push_back({id * 10 + i, 1, 2, 0});
  return b;
}

core::Prediction prediction(int64_t seq) {
  core::Prediction p;
  p.seq = seq;
  p.output_dim = 2;
  p.values[0] = 0.5f * static_cast<float>(seq);
  p.values[1] = -1.0f;
  p.timing.publish_ns = 5000 + seq;
  return p;
}

TEST(RecorderTest, writes_a_file_the_reader_reads_back_completely) {
  testing::TempDir dir("recorder");
  const std::string path = dir.file("session.sfrec");
  Recorder rec(path, "chunking:\n  width_ms: 50\n", "possm test", "123:abcdef", kUnits);
  for (int64_t i = 0; i < 20; ++i) {
    rec.record(batch(i));
    if (i % 2 == 1) rec.record(prediction(i / 2));
  }
  rec.stop();
  rec.stop();  // idempotent
  const RecorderStats st = rec.stats();
  EXPECT_EQ(st.batches, 20u);
  EXPECT_EQ(st.predictions, 10u);
  EXPECT_EQ(st.dropped, 0u);
  EXPECT_EQ(st.io_errors, 0u);
  EXPECT_GT(st.bytes, 0u);

  const replay::Recording r = replay::read_recording(path);
  ASSERT_TRUE(r.clean_end) << r.problem;
  EXPECT_EQ(r.config, "chunking:\n  width_ms: 50\n");
  EXPECT_EQ(r.model, "possm test");
  EXPECT_EQ(r.model_identity, "123:abcdef");
  ASSERT_EQ(r.units.size(), kUnits.size());
  for (size_t i = 0; i < kUnits.size(); ++i) EXPECT_EQ(r.units[i], kUnits[i]);
  ASSERT_EQ(r.batches.size(), 20u);
  for (size_t i = 0; i < r.batches.size(); ++i) {
    const auto want = batch(static_cast<int64_t>(i));
    EXPECT_EQ(r.batches[i].device_time_ns, want.device_time_ns);
    EXPECT_EQ(r.batches[i].arrival_host_ns, want.arrival_host_ns);
    ASSERT_EQ(r.batches[i].events.size(), want.events.size());
    EXPECT_EQ(r.batches[i].events[1].t_ns, want.events[1].t_ns);
  }
  ASSERT_EQ(r.predictions.size(), 10u);
  for (size_t i = 0; i < r.predictions.size(); ++i) {
    EXPECT_EQ(r.predictions[i].seq, static_cast<int64_t>(i));
    EXPECT_EQ(r.predictions[i].values[0], prediction(static_cast<int64_t>(i)).values[0]);
  }
}

TEST(RecorderTest, a_full_queue_drops_counts_and_logs_and_keeps_the_rest_in_order) {
  testing::TempDir dir("recorder");
  const std::string path = dir.file("full.sfrec");
  testing::LogCapture log;
  uint64_t pushed = 0;
  {
    Recorder rec(path, "", "m", "id", kUnits, /*queue_capacity=*/2);
    // record() never waits: pushing much faster than the writer thread drains a two-item queue
    // overflows it, however fast or slow the machine is.
    ASSERT_TRUE(testing::wait_until([&] {
      for (int i = 0; i < 100; ++i) rec.record(batch(static_cast<int64_t>(pushed++), 50));
      return rec.stats().dropped > 0;
    }));
    rec.stop();
    const RecorderStats st = rec.stats();
    EXPECT_GT(st.dropped, 0u);
    EXPECT_EQ(st.batches + st.dropped, pushed)
        << "every record is either written or counted as dropped";
    EXPECT_EQ(st.io_errors, 0u);

    const replay::Recording r = replay::read_recording(path);
    ASSERT_TRUE(r.clean_end) << r.problem;
    ASSERT_EQ(r.batches.size(), st.batches);
    for (size_t i = 1; i < r.batches.size(); ++i) {
      ASSERT_GT(r.batches[i].device_time_ns, r.batches[i - 1].device_time_ns)
          << "order kept at " << i;
    }
  }
  const auto lines = log.lines_with("recorder:");
  ASSERT_FALSE(lines.empty()) << "drops are logged";
  EXPECT_NE(lines.back().find("dropped"), std::string::npos) << lines.back();
}

TEST(RecorderTest, a_file_that_cannot_be_created_is_an_error_naming_it) {
  testing::TempDir dir("recorder");
  const std::string path = dir.file("no_such_dir/x.sfrec");
  try {
    Recorder rec(path, "", "m", "id", kUnits);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(RecorderTest, file_identity_names_size_and_hash) {
  testing::TempDir dir("recorder");
  const std::string path = dir.file("ckpt.bin");
  { std::ofstream(path, std::ios::binary) << "abc"; }
  const std::string id = file_identity(path);
  EXPECT_EQ(id.rfind("3:", 0), 0u) << id;
  EXPECT_EQ(id.size(), 2u + 16u);
  EXPECT_EQ(file_identity(path), id) << "deterministic";
  EXPECT_EQ(file_identity(dir.file("missing")), "unreadable");
}

}  // namespace
}  // namespace spikeflow::pipeline
