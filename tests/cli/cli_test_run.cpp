// spikeflow run / keygen / replay / --version as a user runs them: the network bind policy, key
// files, config-relative paths, the signal path (SIGINT/SIGTERM drain in-flight chunks and exit
// 0) and a session replayed through the graph.
#include "tests/cli/cli_test_support.h"

namespace spikeflow {
namespace {

TEST_F(CliTest, run_refuses_a_network_bind_without_an_allow_list_or_remote_opt_in) {
  std::vector<core::UnitKey> units{{1, 1}};
  models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
  std::ofstream(path("c.yaml")) << "ingest: {address: 0.0.0.0}\ndecoder: {checkpoint: m.ckpt}\n";
  auto c = start({"run", "-c", path("c.yaml"), "--port", "0", "--publish", "tcp://*:*"},
                 path("out.log"));
  EXPECT_NE(wait_exit(c), 0);
  const std::string out = slurp(c.log);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
  EXPECT_NE(
      out.find(
          "ingest.address 0.0.0.0 is not loopback: set ingest.allow to the sources that may send"),
      std::string::npos)
      << out;
  EXPECT_NE(out.find("publish.allow_remote"), std::string::npos) << out;
  EXPECT_EQ(out.find("run: decoder"), std::string::npos)
      << "must fail before the pipeline starts: " << out;
}

TEST_F(CliTest, keygen_writes_a_usable_curve_key_pair_and_never_overwrites_silently) {
  auto c = start({"keygen", "-o", path("server")}, path("out.log"));
  ASSERT_EQ(wait_exit(c), 0) << slurp(c.log);
  auto trim = [](std::string s) { return s.substr(0, s.find_last_not_of("\n") + 1); };
  const std::string secret = trim(slurp(path("server.key_secret"))),
                    pub = trim(slurp(path("server.key")));
  ASSERT_EQ(secret.size(), 40u) << secret;
  ASSERT_EQ(pub.size(), 40u) << pub;
  char derived[41] = {};
  ASSERT_EQ(zmq_curve_public(derived, secret.c_str()), 0) << "the secret key is valid Z85";
  EXPECT_EQ(pub, derived) << "the public key belongs to the secret key";
  EXPECT_EQ(fs::status(path("server.key_secret")).permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  // A second run refuses to replace the keys (one line naming the file), unless --force.
  auto again = start({"keygen", "-o", path("server")}, path("again.log"));
  EXPECT_NE(wait_exit(again), 0);
  const std::string out = slurp(again.log);
  EXPECT_NE(out.find(path("server.key_secret")), std::string::npos) << out;
  EXPECT_NE(out.find("--force"), std::string::npos) << out;
  EXPECT_EQ(trim(slurp(path("server.key_secret"))), secret);
  auto forced = start({"keygen", "-o", path("server"), "--force"}, path("forced.log"));
  EXPECT_EQ(wait_exit(forced), 0) << slurp(forced.log);
  EXPECT_NE(trim(slurp(path("server.key_secret"))), secret);
}

// `-c configs/x.yaml` works from any working directory: the checkpoint named inside it is found
// next to the config, and the log names the real ingest format and transport.
TEST_F(CliTest, relative_paths_in_a_config_resolve_against_its_folder) {
  fs::create_directories(dir_.path() / "configs");
  std::vector<core::UnitKey> units{{1, 1}};
  models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
  std::ofstream(path("configs/c.yaml"))
      << "ingest: {transport: tcp}\ndecoder: {checkpoint: ../m.ckpt}\n";
  auto c = start({"run", "-c", path("configs/c.yaml"), "--port", "0", "--publish",
                  "tcp://127.0.0.1:*", "--duration-s", "0.1"},
                 path("out.log"));
  EXPECT_EQ(wait_exit(c), 0) << slurp(c.log);
  EXPECT_NE(slurp(c.log).find("ingest native tcp"), std::string::npos) << slurp(c.log);
}

TEST_F(CliTest, sigterm_and_sigint_drain_and_exit_zero) {
  std::vector<core::UnitKey> units;
  for (uint32_t i = 1; i <= 16; ++i) units.push_back({i, 1});
  models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
  for (int sig : {SIGTERM, SIGINT}) {
    auto c = start(
        {"run", "--checkpoint", path("m.ckpt"), "--port", "0", "--publish", "tcp://127.0.0.1:*"},
        path("run.log"));
    // Ready when it logs its endpoints (a deadline, not a guess).
    ASSERT_TRUE(testing::wait_until([&] {
      return slurp(c.log).find("run: decoder") != std::string::npos;
    })) << slurp(c.log);
    kill(c.pid, sig);
    const int rc = wait_exit(c);
    EXPECT_EQ(rc, 0) << slurp(c.log);
    EXPECT_NE(slurp(c.log).find("drained and stopped"), std::string::npos) << slurp(c.log);
  }
}

TEST_F(CliTest, replay_plays_a_session_through_the_graph_and_scores_it) {
  auto synth =
      start({"synth", "-o", path("s.sfs"), "--units", "16", "--duration-s", "6", "--seed", "2"},
            path("synth.log"));
  ASSERT_EQ(wait_exit(synth), 0) << slurp(synth.log);
  std::vector<core::UnitKey> units;
  for (uint32_t i = 1; i <= 16; ++i) units.push_back({i, 1});
  models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, units, 2, 50'000'000);
  for (const char* batch_ms : {"0", "7"}) {
    auto c = start({"replay", "-s", path("s.sfs"), "--checkpoint", path("m.ckpt"), "--part", "all",
                    "--batch-ms", batch_ms},
                   path("replay.log"));
    EXPECT_EQ(wait_exit(c), 0) << slurp(c.log);
    const std::string out = slurp(c.log);
    EXPECT_NE(out.find("predictions, out of order 0, backlog shed 0"), std::string::npos) << out;
    EXPECT_NE(out.find("over 120 chunks"), std::string::npos) << out;
  }
  auto missing = start({"replay", "-s", path("s.sfs")}, path("missing.log"));
  EXPECT_NE(wait_exit(missing), 0);
  EXPECT_NE(slurp(missing.log).find("replay needs --session and --checkpoint"), std::string::npos)
      << slurp(missing.log);
}

TEST_F(CliTest, version_prints_the_project_version) {
  auto c = start({"--version"}, path("version.log"));
  EXPECT_EQ(wait_exit(c), 0);
  EXPECT_EQ(slurp(c.log), std::string("spikeflow ") + SPIKEFLOW_VERSION + "\n");
}

}  // namespace
}  // namespace spikeflow
