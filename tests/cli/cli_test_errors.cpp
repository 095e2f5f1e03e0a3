// spikeflow as a user runs it, wrong: exit codes and one-line errors naming the file or the flag,
// config and checkpoint problems found before anything starts.
#include "tests/cli/cli_test_support.h"

namespace spikeflow {
namespace {

// Each case is something a new user tried that used to give a misleading answer (issue 11): now
// one line naming the file and the problem, and the input-file exit code.
TEST_F(CliTest, a_directory_or_a_file_of_another_kind_is_named_for_what_it_is) {
  make_session_and_checkpoint();
  fs::create_directory(path("d.ckpt"));
  fs::create_directory(path("d.sfs"));
  fs::create_directory(path("d.sfrec"));
  write_predictions("p.csv", 0, 120);
  // An HDF5 file (signature, no MATLAB header) named .mat: said to be that, not NWB's wording.
  std::ofstream(path("x.mat"), std::ios::binary)
      << std::string("\x89HDF\r\n\x1a\n", 8) << std::string(600, '\0');
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"replay", "-s", path("s.sfs"), "--checkpoint", path("d.ckpt")},
       "checkpoint '" + path("d.ckpt") + "': is a directory, not a checkpoint file"},
      {{"eval", "-s", path("d.sfs"), "-p", path("p.csv")},
       path("d.sfs") + ": is a directory, not a session file"},
      {{"replay", "-s", path("d.sfs"), "--checkpoint", path("m.ckpt")},
       path("d.sfs") + ": is a directory, not a session file"},
      {{"replay", "-r", path("d.sfrec")},
       path("d.sfrec") + ": is a directory, not a recording file"},
      {{"eval", "-s", path("s.sfs"), "-r", path("d.sfrec")},
       path("d.sfrec") + ": is a directory, not a recording file"},
      {{"eval", "-s", path("x.mat"), "-p", path("p.csv")},
       path("x.mat") + ": is an HDF5 file without MATLAB's header, so not a MAT file (an NWB file? "
                       "name it .nwb)"},
      {{"eval", "-s", path("m.ckpt"), "-p", path("p.csv")},
       path("m.ckpt") + ": is a spikeflow checkpoint, not a session (pass it with --checkpoint)"},
      {{"replay", "-s", path("s.sfs"), "--checkpoint", path("s.sfs")},
       "checkpoint '" + path("s.sfs") +
           "': not a spikeflow checkpoint: it is a spikeflow session file (.sfs)"},
      {{"eval", "-s", path("s.sfs"), "-p", path("nope.csv")},
       path("nope.csv") + ": no such predictions file"},
      {{"send", "-s", path("d.sfs")}, path("d.sfs") + ": is a directory, not a session file"},
      {{"train", "-s", path("d.sfs"), "-o", path("out.ckpt")},
       path("d.sfs") + ": is a directory, not a session file"},
  };
  for (const auto& [args, message] : cases) {
    std::string line;
    for (const auto& x : args) line += x + " ";
    const auto [rc, out] = run(args);
    EXPECT_EQ(rc, kExitInputFile) << line << ": " << out;
    EXPECT_EQ(out, "spikeflow: error: " + message + "\n") << line;
  }
  EXPECT_EQ(core::sniff_file(path("m.ckpt")),
            core::FileFormat::kCheckpoint);  // the writer's real magic
}

TEST_F(CliTest, a_recording_cut_after_its_header_says_what_is_missing) {
  make_session_and_checkpoint();
  auto [rc, out] = run({"run", "--checkpoint", path("m.ckpt"), "--port", "0", "--publish",
                        "tcp://127.0.0.1:*", "--record", path("r.sfrec"), "--duration-s", "0.2"});
  ASSERT_EQ(rc, 0) << out;
  std::ifstream in(path("r.sfrec"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(bytes.size(), 100u);
  EXPECT_EQ(core::sniff_file(path("r.sfrec")), core::FileFormat::kRecording);
  std::ofstream(path("cut.sfrec"), std::ios::binary) << bytes.substr(0, 40);  // the header alone
  std::tie(rc, out) = run({"replay", "-r", path("cut.sfrec")});
  EXPECT_EQ(rc, kExitInputFile) << out;
  EXPECT_EQ(
      out,
      "spikeflow: error: " + path("cut.sfrec") +
          ": recording ends after 40 bytes (its header alone): no config, model or unit-map record "
          "(nothing to replay)\n");
  std::tie(rc, out) = run({"eval", "-s", path("s.sfs"), "-r", path("cut.sfrec")});
  EXPECT_EQ(rc, kExitInputFile) << out;
  EXPECT_EQ(out, "spikeflow: error: " + path("cut.sfrec") +
                     ": recording ends after 40 bytes (its header alone): no prediction record "
                     "(nothing to score)\n");
  // Cut inside the first record: the warning says where, the error what is missing.
  std::ofstream(path("cut2.sfrec"), std::ios::binary) << bytes.substr(0, 60);
  std::tie(rc, out) = run({"replay", "-r", path("cut2.sfrec")});
  EXPECT_EQ(rc, kExitInputFile) << out;
  EXPECT_NE(out.find("spikeflow: error: " + path("cut2.sfrec") +
                     ": recording ends after 60 bytes, cut inside a record: "
                     "no config, model or unit-map record"),
            std::string::npos)
      << out;
  EXPECT_EQ(out.find("checkpoint ''"), std::string::npos) << out;
}

TEST_F(CliTest, eval_refuses_nan_predictions_and_says_na_when_nothing_matched) {
  make_session_and_checkpoint();
  for (const char* bad : {"nan", "inf", "-inf"}) {
    write_predictions("nan.csv", 0, 120, bad);
    const auto [rc, out] =
        run({"eval", "-s", path("s.sfs"), "-p", path("nan.csv"), "--part", "all"});
    EXPECT_EQ(rc, kExitInputFile) << out;
    EXPECT_EQ(lines(out), 1u) << out;
    EXPECT_EQ(
        out.rfind("spikeflow: error: " + path("nan.csv") + ":5: prediction value is not finite", 0),
        0u)
        << out;
  }
  // No prediction at all, or none of this session's chunks (seq past its end): scores are n/a.
  write_predictions("none.csv", 0, 0);
  write_predictions("other.csv", 1000, 1010);
  for (const auto& [name, why] : std::vector<std::pair<std::string, std::string>>{
           {"none.csv", "(it holds none)"},
           {"other.csv", "(10 read: 10 outside --part all, 0 of another chunk width)"}}) {
    const auto [rc, out] = run({"eval", "-s", path("s.sfs"), "-p", path(name), "--part", "all"});
    EXPECT_EQ(rc, kExitMismatch) << out;
    EXPECT_NE(out.find("R2: mean n/a, vx n/a, vy n/a"), std::string::npos) << out;
    EXPECT_NE(out.find("Pearson r: mean n/a, vx n/a, vy n/a"), std::string::npos) << out;
    EXPECT_EQ(out.find("0.0000"), std::string::npos) << out;
    EXPECT_NE(out.find("spikeflow: error: " + path(name) +
                       ": no predictions matched the session's chunks " + why + "\n"),
              std::string::npos)
        << out;
  }
  // Some chunks without a prediction: scored, then the mismatch code and a line saying how many.
  write_predictions("part.csv", 0, 100);
  auto [rc, out] = run({"eval", "-s", path("s.sfs"), "-p", path("part.csv"), "--part", "all"});
  EXPECT_EQ(rc, kExitMismatch) << out;
  EXPECT_NE(out.find("spikeflow: error: " + path("part.csv") +
                     ": 20 of 120 chunks of the session have no prediction"),
            std::string::npos)
      << out;
  write_predictions("all.csv", 0, 120);
  std::tie(rc, out) = run({"eval", "-s", path("s.sfs"), "-p", path("all.csv"), "--part", "all"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("chunks: 120 matched of 120"), std::string::npos) << out;
}

TEST_F(CliTest, usage_errors_exit_two) {
  for (const std::vector<std::string>& args :
       std::vector<std::vector<std::string>>{{"run", "--port", "70000"},
                                             {"eval", "-s", "s.sfs"},
                                             {"replay", "-s", "s.sfs"},
                                             {"no-such-command"}}) {
    EXPECT_EQ(run(args).first, kExitUsage) << args[0] << ": " << run(args).second;
  }
  EXPECT_EQ(run({"--version"}).first, 0);
}

TEST_F(CliTest, missing_config_is_one_line_naming_the_file_and_a_nonzero_exit) {
  auto c = start({"run", "-c", path("nope.yaml")}, path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  const std::string out = slurp(c.log);
  EXPECT_NE(out.find(path("nope.yaml") + ": no such config file"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST_F(CliTest, invalid_config_lists_every_problem_on_one_line) {
  std::ofstream(path("bad.yaml")) << "chunking: {width_ms: -5}\npublish: {format: xml}\nbogus: 1\n";
  auto c = start({"run", "-c", path("bad.yaml")}, path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  const std::string out = slurp(c.log);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  for (const char* k : {"chunking.width_ms", "publish.format", "bogus: unknown key"}) {
    EXPECT_NE(out.find(k), std::string::npos) << k << " in " << out;
  }
}

TEST_F(CliTest, corrupt_checkpoint_is_a_clear_error) {
  std::ofstream(path("m.ckpt")) << "not a checkpoint";
  auto c = start(
      {"run", "--checkpoint", path("m.ckpt"), "--port", "0", "--publish", "tcp://127.0.0.1:*"},
      path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  EXPECT_NE(slurp(c.log).find(path("m.ckpt")), std::string::npos) << slurp(c.log);
}

// A bad value is one line naming the flag (or the file) and a non-zero exit, never a silent
// fallback: each case is something a new user tried.
TEST_F(CliTest, bad_flags_are_one_line_errors_naming_the_flag) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"run", "--port", "70000"}, "--port"},
      {{"run", "--port", "-1"}, "--port"},
      {{"run", "--duration-s", "-5"}, "--duration-s"},
      {{"run", "--duration-s", "nan"}, "--duration-s"},
      {{"run", "--duration-s", "inf"}, "--duration-s"},
      {{"send", "-s", "s.sfs", "--port", "99999"}, "--port"},
      {{"send", "-s", "s.sfs", "--speed", "-1"}, "--speed"},
      {{"send", "-s", "s.sfs", "--format", "intan", "--transport", "udp"}, "--transport"},
      {{"send", "-s", "s.sfs", "--interval-ms", "nan"}, "--interval-ms"},
      {{"listen", "--timeout-s", "-1"}, "--timeout-s"},
      {{"listen", "--idle-timeout-s", "inf"}, "--idle-timeout-s"},
      {{"replay", "--speed", "-2"}, "--speed"},
      {{"replay", "--max-batch", "0"}, "--max-batch"},
      {{"profile", "--duration-s", "nan"}, "--duration-s"},
      {{"profile", "--threads", "0"}, "--threads"},
      {{"train", "-s", "s.sfs", "-o", "m.ckpt", "--lr", "inf"}, "--lr"},
      {{"train", "-s", "s.sfs", "-o", "m.ckpt", "--width-ms", "0"}, "--width-ms"},
      {{"train", "-s", "s.sfs", "-o", "m.ckpt", "--train-fraction", "1.5"}, "--train-fraction"},
      {{"synth", "-o", "s.sfs", "--units", "0"}, "--units"},
      {{"synth", "-o", "s.sfs", "--duration-s", "-1"}, "--duration-s"},
      {{"eval", "-s", "s.sfs", "--width-ms", "nan"}, "--width-ms"},
  };
  for (const auto& [args, flag] : cases) {
    std::string line;
    for (const auto& x : args) line += x + " ";
    auto c = start(args, path("out.log"));
    EXPECT_NE(wait_exit(c), 0) << line;
    const std::string out = slurp(c.log);
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << line << ": " << out;
    EXPECT_NE(out.find(flag), std::string::npos) << line << ": " << out;
  }
}

TEST_F(CliTest, a_directory_or_a_duplicate_key_is_not_run_on_defaults) {
  auto c = start({"run", "-c", dir_.path().string()}, path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  std::string out = slurp(c.log);
  EXPECT_NE(out.find(dir_.path().string() + ": is a directory"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;

  std::ofstream(path("dup.yaml")) << "ingest:\n  port: 5000\n  port: 6000\n";
  c = start({"run", "-c", path("dup.yaml")}, path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  out = slurp(c.log);
  EXPECT_NE(out.find(path("dup.yaml") + ": ingest.port: duplicate key"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST_F(CliTest, preflight_lists_config_and_checkpoint_problems_before_anything_starts) {
  std::vector<core::UnitKey> units{{1, 1}, {2, 1}};
  models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
  std::ofstream(path("c.yaml"))
      << "chunking: {width_ms: 20, lateness_ms: 2}\ndecoder: {checkpoint: m.ckpt}\n"
         "record: {path: no/such/dir/r.sfrec}\n";
  auto c = start({"run", "-c", path("c.yaml"), "--port", "0", "--publish", "tcp://127.0.0.1:*"},
                 path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  const std::string out = slurp(c.log);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(out.find(path("c.yaml") + ": "), std::string::npos) << out;
  EXPECT_NE(out.find("chunking.width_ms: 20 ms, but checkpoint '" + path("m.ckpt") +
                     "' was trained on 50 ms"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("record.path: folder"), std::string::npos) << out;
  EXPECT_EQ(out.find("run: decoder"), std::string::npos)
      << "must fail before the pipeline starts: " << out;
}

}  // namespace
}  // namespace spikeflow
