// spikeflow export / inspect and NWB sessions: the NWB round trip of a recorded run, what h5py
// finds in the file, inspect's answers, and a lab's NWB layout trained and replayed.
#include "tests/cli/cli_test_support.h"

namespace spikeflow {
namespace {

/// Records a session replay of a 16-unit synthetic session (s.sfs, m.ckpt) into `recording`.
class CliExportTest : public CliTest {
 protected:
  void SetUp() override {
    auto synth =
        start({"synth", "-o", path("s.sfs"), "--units", "16", "--duration-s", "6", "--seed", "2"},
              path("synth.log"));
    ASSERT_EQ(wait_exit(synth), 0) << slurp(synth.log);
    std::vector<core::UnitKey> units;
    for (uint32_t i = 1; i <= 16; ++i) units.push_back({i, 1});
    models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
    record(path("s.sfs"), "rec1.sfrec");
  }
  /// `replay -s session` with a config that records the run into dir/name.
  void record(const std::string& session, const std::string& name) {
    std::ofstream(path(name + ".yaml")) << "record: {path: " << name << "}\n";
    auto c = start({"replay", "-s", session, "--checkpoint", path("m.ckpt"), "-c",
                    path(name + ".yaml"), "--part", "all"},
                   path(name + ".log"));
    ASSERT_EQ(wait_exit(c), 0) << slurp(c.log);
  }
};

// The exported file, replayed as a session, gives back the recording's predictions chunk for
// chunk, bit for bit (flags too, but for how the decoder batched); and the recording's own replay
// agrees with what it recorded.
TEST_F(CliExportTest, export_then_replay_of_the_nwb_gives_the_recorded_predictions) {
  auto ex = start({"export", path("rec1.sfrec"), "-o", path("run.nwb"), "--session", path("s.sfs")},
                  path("ex.log"));
  ASSERT_EQ(wait_exit(ex), 0) << slurp(ex.log);
  EXPECT_NE(slurp(ex.log).find("16 units (0 not in the unit map)"), std::string::npos)
      << slurp(ex.log);
  record(path("run.nwb"), "rec2.sfrec");

  const auto rec1 = replay::read_recording(path("rec1.sfrec"));
  const auto rec2 = replay::read_recording(path("rec2.sfrec"));
  ASSERT_FALSE(rec1.predictions.empty());
  std::map<int64_t, const core::Prediction*> by_start;
  for (const auto& p : rec1.predictions) by_start[p.start_ns] = &p;
  size_t identical = 0;
  for (const auto& p : rec2.predictions) {
    auto it = by_start.find(p.start_ns);
    if (it == by_start.end()) continue;
    const core::Prediction& q = *it->second;
    // kCatchUp says how the decoder's calls were batched, which depends on thread scheduling in an
    // as-fast-as-possible replay; the values are bit-identical either way.
    const uint32_t batching = static_cast<uint32_t>(core::ChunkFlag::kCatchUp);
    if (p.end_ns == q.end_ns && (p.flags & ~batching) == (q.flags & ~batching) &&
        p.n_tokens == q.n_tokens && p.output_dim == q.output_dim &&
        std::memcmp(p.values.data(), q.values.data(),
                    sizeof(float) * static_cast<size_t>(p.output_dim)) == 0) {
      ++identical;
    }
  }
  // Every chunk of the NWB replay is one of the recording's, identical, and none is missing: the
  // file's epoch holds the run's extent, so the NWB session ends where the .sfs session did (a
  // round 6 s, past its last spike and behaviour sample) and closes the same end-of-stream chunk.
  EXPECT_EQ(identical, rec2.predictions.size());
  EXPECT_EQ(identical, rec1.predictions.size());
  std::printf("export round trip: %zu identical of %zu recorded predictions\n", identical,
              rec1.predictions.size());

  auto own = start({"replay", "-r", path("rec1.sfrec")}, path("own.log"));
  EXPECT_EQ(wait_exit(own), 0) << slurp(own.log);
  const std::string n = std::to_string(rec1.predictions.size());
  EXPECT_NE(slurp(own.log).find("bit-identical " + n + " of " + n), std::string::npos)
      << slurp(own.log);
}

// h5py (python3-h5py) finds every group, table and attribute a pynwb user expects.
TEST_F(CliExportTest, h5py_finds_the_nwb_groups_and_attributes) {
  const std::string python = "/usr/bin/python3";
  auto probe = start_program(python, {"-c", "import h5py"}, path("probe.log"));
  if (wait_exit(probe) != 0) GTEST_SKIP() << "python3-h5py is not installed";
  const std::string script = std::string(SPIKEFLOW_SOURCE_DIR) + "/tests/cli/check_nwb.py";
  for (bool with_session : {true, false}) {
    std::vector<std::string> args{"export", path("rec1.sfrec"), "-o", path("run.nwb")};
    if (with_session) args.insert(args.end(), {"--session", path("s.sfs")});
    auto ex = start(args, path("ex.log"));
    ASSERT_EQ(wait_exit(ex), 0) << slurp(ex.log);
    std::vector<std::string> check{script, path("run.nwb")};
    if (with_session) check.push_back("--session");
    auto c = start_program(python, check, path("check.log"));
    EXPECT_EQ(wait_exit(c), 0) << slurp(c.log);
    EXPECT_NE(slurp(c.log).find("nwb ok:"), std::string::npos) << slurp(c.log);
  }
}

TEST_F(CliExportTest, export_errors_are_one_line_naming_the_file) {
  auto missing = start({"export", path("nope.sfrec"), "-o", path("run.nwb")}, path("m.log"));
  EXPECT_NE(wait_exit(missing), 0);
  EXPECT_NE(slurp(missing.log).find("nope.sfrec"), std::string::npos) << slurp(missing.log);
  auto unwritable =
      start({"export", path("rec1.sfrec"), "-o", path("no/such/dir/run.nwb")}, path("u.log"));
  EXPECT_NE(wait_exit(unwritable), 0);
  EXPECT_NE(slurp(unwritable.log).find("no/such/dir/run.nwb"), std::string::npos)
      << slurp(unwritable.log);
}

TEST_F(CliExportTest, inspect_tells_each_kind_by_content_in_text_and_json) {
  auto ck = start({"inspect", path("m.ckpt")}, path("ck.log"));
  ASSERT_EQ(wait_exit(ck), 0) << slurp(ck.log);
  EXPECT_NE(slurp(ck.log).find("decoder: possm"), std::string::npos) << slurp(ck.log);
  EXPECT_NE(slurp(ck.log).find("row=15, channel=16, unit=1"), std::string::npos) << slurp(ck.log);
  EXPECT_NE(slurp(ck.log).find("target_std"), std::string::npos) << slurp(ck.log);

  // A renamed session is still a session.
  fs::copy_file(path("s.sfs"), path("renamed.bin"));
  auto ss = start({"inspect", path("renamed.bin")}, path("ss.log"));
  ASSERT_EQ(wait_exit(ss), 0) << slurp(ss.log);
  EXPECT_NE(slurp(ss.log).find("kind: session"), std::string::npos) << slurp(ss.log);
  EXPECT_NE(slurp(ss.log).find("units: 16"), std::string::npos) << slurp(ss.log);
  EXPECT_NE(slurp(ss.log).find("channels: [vx, vy]"), std::string::npos) << slurp(ss.log);

  auto rj = start({"inspect", "--json", path("rec1.sfrec")}, path("rj.log"));
  ASSERT_EQ(wait_exit(rj), 0) << slurp(rj.log);
  const std::string json = slurp(rj.log);
  EXPECT_EQ(json.front(), '{') << json;
  EXPECT_EQ(std::count(json.begin(), json.end(), '\n'), 1) << json;
  EXPECT_NE(json.find("\"kind\":\"recording\""), std::string::npos) << json;
  EXPECT_NE(json.find("\"clean_end\":true"), std::string::npos) << json;

  // A torn tail is reported, not fatal.
  {
    const std::string bytes = slurp(path("rec1.sfrec"));
    std::ofstream(path("torn.sfrec"), std::ios::binary) << bytes.substr(0, bytes.size() - 5);
  }
  auto torn = start({"inspect", path("torn.sfrec")}, path("torn.log"));
  ASSERT_EQ(wait_exit(torn), 0) << slurp(torn.log);
  EXPECT_NE(slurp(torn.log).find("truncated: yes"), std::string::npos) << slurp(torn.log);

  // An exported file without behaviour still inspects (spikes and the reason behaviour is absent).
  auto ex = start({"export", path("rec1.sfrec"), "-o", path("run.nwb")}, path("ex.log"));
  ASSERT_EQ(wait_exit(ex), 0) << slurp(ex.log);
  auto nwb = start({"inspect", path("run.nwb")}, path("nwb.log"));
  ASSERT_EQ(wait_exit(nwb), 0) << slurp(nwb.log);
  EXPECT_NE(slurp(nwb.log).find("format: nwb"), std::string::npos) << slurp(nwb.log);
  EXPECT_NE(slurp(nwb.log).find("behaviour not read"), std::string::npos) << slurp(nwb.log);

  std::ofstream(path("notes.txt")) << "hello\n";
  auto bad = start({"inspect", path("notes.txt")}, path("bad.log"));
  EXPECT_NE(wait_exit(bad), 0);
  const std::string err = slurp(bad.log);
  EXPECT_NE(err.find("notes.txt: not a spikeflow"), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
}

TEST_F(CliTest, an_nwb_file_with_position_only_trains_and_replays) {
  // A lab's NWB layout: behaviour is a SpatialSeries inside a Position container (nwb-schema
  // core/nwb.behavior.yaml), no hand_vel, no electrodes table. 16 units whose rates follow the
  // hand's velocity, 40 s, position at 100 Hz.
  replay::testing::NwbFixture f;
  f.ids.clear();
  f.spikes_s.clear();
  for (int u = 1; u <= 16; ++u) {
    f.ids.push_back(u);
    std::vector<double> st;
    double t = 0.0;
    uint32_t x = 12345u * static_cast<uint32_t>(u);
    while (t < 40.0) {
      x = x * 1664525u + 1013904223u;
      const double vx = std::cos(t), vy = -std::sin(t);
      const double rate = 20.0 + 15.0 * (u % 2 ? vx : vy) * (u % 4 < 2 ? 1 : -1);
      t += -std::log((x >> 8) / 16777216.0 + 1e-9) / rate;
      if (t < 40.0) st.push_back(t);
    }
    f.spikes_s.push_back(st);
  }
  f.electrodes.reset();
  f.electrode_table_rows = -1;
  f.behavior_group = "/processing/behavior/Position/hand";
  f.behavior.clear();
  std::vector<double> ts;
  for (int i = 0; i < 4000; ++i) {
    const double t = i / 100.0;
    ts.push_back(t);
    f.behavior.push_back(std::sin(t));
    f.behavior.push_back(std::cos(t));
  }
  f.behavior_dims = {4000, 2};
  f.timestamps = ts;
  f.conversion.reset();
  f.offset.reset();
  f.trials = false;
  replay::testing::write_nwb(path("pos.nwb"), f);

  auto plain = start({"train", "-s", path("pos.nwb"), "-o", path("m.ckpt")}, path("plain.log"));
  EXPECT_NE(wait_exit(plain), 0);
  EXPECT_NE(slurp(plain.log).find("Position/hand"), std::string::npos)
      << slurp(plain.log);  // found series listed

  auto train = start({"train", "-s", path("pos.nwb"), "-o", path("m.ckpt"), "--behaviour",
                      "Position", "--behaviour-velocity", "--epochs", "2", "--max-seconds", "60",
                      "--dim", "16", "--rnn-hidden", "16"},
                     path("train.log"));
  ASSERT_EQ(wait_exit(train), 0) << slurp(train.log);
  auto rep = start({"replay", "-s", path("pos.nwb"), "--behaviour", "Position",
                    "--behaviour-velocity", "--checkpoint", path("m.ckpt"), "--part", "all"},
                   path("replay.log"));
  EXPECT_EQ(wait_exit(rep), 0) << slurp(rep.log);
  EXPECT_NE(slurp(rep.log).find("out of order 0"), std::string::npos) << slurp(rep.log);
}

}  // namespace
}  // namespace spikeflow
