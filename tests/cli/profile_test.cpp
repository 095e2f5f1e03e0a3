// `spikeflow profile` as a user runs it: one small load point with the floor, the in-process
// consumer, the hot loop and variants, each run's counts checked (every message received), the
// HTML report's plots present; bad --variant values are one-line errors. Counts and structure
// only: never a latency value (the machine may be loaded).
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fcntl.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/common/child_process.h"
#include "tests/common/test_support.h"

extern char** environ;

namespace spikeflow {
namespace {

namespace fs = std::filesystem;

constexpr int kExitUsage = 2;

using testing::slurp;

/// Runs the binary to the end: exit code and everything it printed (stdout and stderr).
std::pair<int, std::string> run_spikeflow(std::vector<std::string> args, const std::string& log) {
  const auto c = testing::spawn_logged(SPIKEFLOW_EXE, std::move(args), log);
  return {testing::wait_exit(c), slurp(log)};
}

struct RunCounts {
  long chunks = 0, received = 0, deadline_closed = 0, timed = 0;
};

/// "LABEL: N chunks, N received, N closed by deadline/at end, N timed" lines of the text output.
std::map<std::string, RunCounts> run_counts(const std::string& out) {
  std::map<std::string, RunCounts> m;
  const std::regex re(
      R"((\S+): (\d+) chunks, (\d+) received, (\d+) closed by deadline/at end, (\d+) timed)");
  for (std::sregex_iterator it(out.begin(), out.end(), re), end; it != end; ++it) {
    m[(*it)[1]] = {std::stol((*it)[2]), std::stol((*it)[3]), std::stol((*it)[4]),
                   std::stol((*it)[5])};
  }
  return m;
}

class ProfileTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }
  testing::TempDir dir_{"profile"};
};

// One load point, every kind of run. The base config (-c) renames the topic, so the subscribers
// only receive anything when the base reaches every run; the variants override two keys through
// the key table, and the recording variant's file exists when its override took effect.
TEST_F(ProfileTest, floor_in_process_hot_loop_and_variants_all_receive_every_message) {
  std::ofstream(path("base.yaml")) << "publish:\n  topic: prof\n";
  const std::string rec = path("variant.sfrec");
  auto [rc, out] = run_spikeflow(
      {"profile", "-c", path("base.yaml"), "--channels", "16", "--duration-s", "1.5",
       "--variant", "threads2:decoder.threads=2", "--variant", "rec:record.path=" + rec,
       "--report", path("r.html"), "--json", path("r.json"), "--workdir", path("work")},
      path("profile.log"));
  ASSERT_EQ(rc, 0) << out;
  const auto runs = run_counts(out);
  for (const char* label : {"spikeflow", "floor", "in-process", "threads2", "rec"}) {
    ASSERT_TRUE(runs.count(label)) << label << "\n" << out;
    const auto& r = runs.at(label);
    // 1.5 s of 50 ms chunks: about 30; every one made is received, and most are timed from the
    // sender's packet (the last may close at the end, without one).
    EXPECT_GE(r.chunks, 20) << label << "\n" << out;
    EXPECT_EQ(r.received, r.chunks) << label << "\n" << out;
    EXPECT_GE(r.timed + r.deadline_closed + 2, r.received) << label << "\n" << out;
    EXPECT_GT(r.timed, 0) << label << "\n" << out;
  }
  EXPECT_EQ(runs.at("floor").deadline_closed, 0) << out;  // the relay forwards on packets only
  EXPECT_TRUE(fs::exists(rec)) << out;
  for (const char* section :
       {"FLOOR end to end", "DIFFERENCE (spikeflow-floor)", "in-process end to end",
        "hot loop decode", "live / hot loop", "paced loop decode", "live / paced loop",
        "variant threads2", "variant rec"}) {
    EXPECT_NE(out.find(section), std::string::npos) << section << "\n" << out;
  }
  const std::string html = slurp(path("r.html"));
  EXPECT_NE(html.find("<svg class=cdf"), std::string::npos);
  EXPECT_NE(html.find("<svg class=stacked"), std::string::npos);
  EXPECT_NE(html.find("floor end to end"), std::string::npos);
  EXPECT_NE(html.find("difference (spikeflow - floor)"), std::string::npos);
  const std::string json = slurp(path("r.json"));
  for (const char* key : {"\"floor\"", "\"in_process\"", "\"hot_loop_decode\"",
                          "\"paced_loop_decode\"", "\"threads2\"", "\"warmups\""})
    EXPECT_NE(json.find(key), std::string::npos) << key;
}

// ipc:// on both sides: the floor follows the transport the pipeline publishes on.
TEST_F(ProfileTest, ipc_transport_floor_receives_every_message) {
  auto [rc, out] = run_spikeflow({"profile", "--channels", "16", "--duration-s", "1", "--transport",
                                  "ipc", "--no-in-process", "--no-hot-loop", "--workdir",
                                  path("work")},
                                 path("profile.log"));
  ASSERT_EQ(rc, 0) << out;
  const auto runs = run_counts(out);
  ASSERT_TRUE(runs.count("floor")) << out;
  EXPECT_EQ(runs.count("in-process"), 0u) << out;
  EXPECT_GE(runs.at("floor").chunks, 10) << out;
  EXPECT_EQ(runs.at("floor").received, runs.at("floor").chunks) << out;
  EXPECT_EQ(runs.at("spikeflow").received, runs.at("spikeflow").chunks) << out;
}

// A bad variant is the key's own one-line error and the usage exit code, before anything runs.
TEST_F(ProfileTest, bad_variants_are_one_line_usage_errors) {
  const std::vector<std::pair<std::string, std::string>> cases{
      {"nocolon", "--variant nocolon"},
      {":decoder.threads=2", "--variant"},
      {"x:decoder.threads", "is not key=value"},
      {"x:decoder.threads=0", "decoder.threads"},
      {"x:decoder.threads=lots", "decoder.threads"},
      {"x:no.such_key=1", "no.such_key"},
      {"x:publish.format=xml", "publish.format"},
  };
  for (const auto& [spec, expect] : cases) {
    auto [rc, out] = run_spikeflow({"profile", "--channels", "16", "--duration-s", "1",
                                    "--variant", spec, "--workdir", path("work")},
                                   path("bad.log"));
    EXPECT_EQ(rc, kExitUsage) << spec << ": " << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << spec << ": " << out;
    EXPECT_NE(out.find(expect), std::string::npos) << spec << ": " << out;
    EXPECT_FALSE(fs::exists(path("work"))) << spec << ": ran before checking";
  }
}

}  // namespace
}  // namespace spikeflow
