// Live calibration end to end, with the real binaries as separate processes: `spikeflow run
// --calibration-block` records the first seconds of a synthetic session that `spikeflow send`
// streams to it (while the pipeline decodes as usual), the session's behaviour goes to a CSV on
// the device clock, `spikeflow calibrate --recording --behavior` adapts a pretrained model, and
// the calibrated model decodes the rest of the session (never seen in calibration) well.
// Bad input (behaviour on another clock, behaviour that stops early, a block without spikes) is
// one line naming the file. Synchronisation waits on log lines and process exits with deadlines.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/r2.h"
#include "models/load_decoder.h"
#include "models/trainer.h"
#include "replay/behavior_file.h"
#include "replay/dataset.h"
#include "replay/session_file.h"
#include "tests/common/child_process.h"
#include "tests/common/test_support.h"

extern char** environ;

namespace spikeflow {
namespace {

using testing::slurp;
using testing::wait_exit;

pid_t start(std::vector<std::string> args, const std::string& log) {
  return testing::spawn_logged(SPIKEFLOW_EXE, std::move(args), log).pid;
}


constexpr int64_t kWidthNs = 50'000'000;
constexpr double kBlockS = 45;    // the calibration block
constexpr double kSessionS = 70;  // the held-out part: from kBlockS + 5 s to the end

class CalibrateLiveTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }

  void TearDown() override {
    if (run_ > 0) {
      kill(run_, SIGKILL);
      wait_exit(run_);
    }
  }

  /// A 3-session corpus; a small base model pretrained on sessions 0 and 1.
  void make_corpus_and_base(int epochs) {
    const pid_t synth = start({"synth", "--sessions", "3", "--duration-s",
                               std::to_string(kSessionS), "--min-units", "20", "--max-units", "30",
                               "-o", path("corpus")},
                              path("synth.log"));
    ASSERT_EQ(wait_exit(synth), 0) << slurp(path("synth.log"));
    const pid_t pre = start({"pretrain", "-s", path("corpus/session_00.sfs"), "-s",
                             path("corpus/session_01.sfs"), "-o", path("base.ckpt"), "--epochs",
                             std::to_string(epochs), "--dim", "32", "--rnn-hidden", "64", "--threads", "1",
                             "--no-progress"},
                            path("pretrain.log"));
    ASSERT_EQ(wait_exit(pre), 0) << slurp(path("pretrain.log"));
  }

  /// Starts `run` with a calibration block of `block_s` into `out`, over TCP; returns its port.
  std::string start_run(double block_s, const std::string& out) {
    const auto session = replay::load_session(path("corpus/session_02.sfs"));
    models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, session.units, 2,
                                 kWidthNs);
    std::ofstream(path("c.yaml")) << "ingest: {transport: tcp}\n";
    run_ = start({"run", "-c", path("c.yaml"), "--checkpoint", path("m.ckpt"), "--port", "0",
                  "--publish", "tcp://127.0.0.1:*", "--calibration-block", std::to_string(block_s),
                  "-o", out},
                 path("run.log"));
    const std::regex ready(R"(ingest \S+ \S+ \S+:(\d+) \| publish)");
    std::smatch m;
    std::string log;
    EXPECT_TRUE(testing::wait_until(
        [&] {
          log = slurp(path("run.log"));
          return std::regex_search(log, m, ready);
        },
        std::chrono::seconds(60)))
        << log;
    return m.size() > 1 ? m[1].str() : std::string();
  }

  /// SIGTERM: drains and exits 0.
  void stop_run() {
    kill(run_, SIGTERM);
    EXPECT_EQ(wait_exit(run_), 0) << slurp(path("run.log"));
    run_ = -1;
  }

  std::pair<int, std::string> calibrate(const std::string& rec, const std::string& behavior,
                                        const std::string& out) {
    const pid_t c = start({"calibrate", "--base", path("base.ckpt"), "--recording", rec,
                           "--behavior", behavior, "-o", out, "--reid-epochs", "40",
                           "--finetune-epochs", "30", "--threads", "1", "--no-progress"},
                          path("cal.log"));
    const int rc = wait_exit(c);
    return {rc, slurp(path("cal.log"))};
  }

  testing::TempDir dir_{"calibrate_live"};
  pid_t run_ = -1;
};

TEST_F(CalibrateLiveTest, a_block_recorded_live_calibrates_a_model_that_decodes_the_rest) {
  make_corpus_and_base(30);
  const std::string port = start_run(kBlockS, path("block.sfrec"));
  ASSERT_FALSE(port.empty());
  const pid_t send = start({"send", "-s", path("corpus/session_02.sfs"), "--transport", "tcp",
                            "--port", port, "--speed", "10", "-q"},
                           path("send.log"));
  EXPECT_EQ(wait_exit(send), 0) << slurp(path("send.log"));
  ASSERT_TRUE(testing::wait_until(
      [&] { return slurp(path("run.log")).find("calibration block complete") != std::string::npos; },
      std::chrono::seconds(60)))
      << slurp(path("run.log"));
  stop_run();
  EXPECT_NE(slurp(path("run.log")).find("predictions"), std::string::npos)  // decoded as usual
      << slurp(path("run.log"));

  // The block holds the kBlockS seconds of spikes from the first one, nothing after (TCP: none
  // lost; a bound rather than equality all the same, the recorder may drop when its queue is full).
  const auto block = replay::read_recording(path("block.sfrec"));
  EXPECT_TRUE(block.clean_end);
  const auto session = replay::load_session(path("corpus/session_02.sfs"));
  size_t in_block = 0;
  for (const auto& b : block.batches) in_block += b.events.size();
  const int64_t first = replay::merged_events(session, session.start_ns, session.end_ns)[0].t_ns;
  const auto expected =
      replay::merged_events(session, first, first + static_cast<int64_t>(kBlockS * 1e9)).size();
  EXPECT_GE(in_block, expected * 99 / 100);
  EXPECT_LE(in_block, expected);

  replay::write_behavior_csv(replay::behavior_of(session), path("behavior.csv"));
  auto [rc, out] = calibrate(path("block.sfrec"), path("behavior.csv"), path("new.ckpt"));
  ASSERT_EQ(rc, 0) << out;
  for (const char* k : {"calibrated     R2", "ridge (250 ms) R2", "unit re-identification"})
    EXPECT_NE(out.find(k), std::string::npos) << k << " in " << out;

  // The calibrated model on the part of the session after the block, never seen in calibration.
  replay::DatasetOptions o;
  o.width_ns = kWidthNs;
  o.from_ns = static_cast<int64_t>((kBlockS + 5) * 1e9);
  o.to_ns = session.end_ns;
  const auto test = replay::build_dataset(session, o);
  auto dec = models::load_decoder(path("new.ckpt"), models::RuntimeOptions{});
  const double r2 =
      core::mean_r2(test.targets, models::decode_dataset(*dec, test), test.output_dim);
  EXPECT_GT(r2, 0.3) << out;
  std::printf("calibrated from a live block: held-out R2 %.3f over %zu chunks\n", r2, test.size());

  // Behaviour on another clock (shifted by 1000 s): one line naming the file, non-zero exit.
  auto shifted = replay::behavior_of(session);
  for (auto& t : shifted.t_ns) t += 1'000'000'000'000;
  replay::write_behavior_csv(shifted, path("shifted.csv"));
  auto [rc2, out2] = calibrate(path("block.sfrec"), path("shifted.csv"), path("x.ckpt"));
  EXPECT_NE(rc2, 0);
  EXPECT_NE(out2.find(path("shifted.csv") + ": behaviour"), std::string::npos) << out2;
  EXPECT_NE(out2.find("does not overlap"), std::string::npos) << out2;
  // Behaviour that stops before the block ends.
  auto early = replay::behavior_of(session);
  size_t n = 0;
  while (n < early.t_ns.size() && early.t_ns[n] < 20'000'000'000) ++n;
  early.t_ns.resize(n);
  early.values.resize(n * early.names.size());
  replay::write_behavior_csv(early, path("early.csv"));
  auto [rc3, out3] = calibrate(path("block.sfrec"), path("early.csv"), path("x.ckpt"));
  EXPECT_NE(rc3, 0);
  EXPECT_NE(out3.find("must cover them"), std::string::npos) << out3;
  EXPECT_FALSE(std::filesystem::exists(path("x.ckpt")));
}

TEST_F(CalibrateLiveTest, a_block_without_spikes_is_cut_short_and_refused_by_calibrate) {
  make_corpus_and_base(1);
  ASSERT_FALSE(start_run(30, path("empty.sfrec")).empty());
  stop_run();  // nothing sent
  EXPECT_NE(slurp(path("run.log")).find("cut short"), std::string::npos) << slurp(path("run.log"));
  replay::write_behavior_csv(replay::behavior_of(replay::load_session(path("corpus/session_02.sfs"))),
                             path("behavior.csv"));
  auto [rc, out] = calibrate(path("empty.sfrec"), path("behavior.csv"), path("x.ckpt"));
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find(path("empty.sfrec") + ": the recording holds no spikes"), std::string::npos)
      << out;
  // The flags go together.
  const pid_t bad = start({"run", "--calibration-block", "10"}, path("bad.log"));
  EXPECT_EQ(wait_exit(bad), 2) << slurp(path("bad.log"));
  const pid_t bad2 = start({"run", "--calibration-block", "0", "-o", path("y.sfrec")},
                           path("bad2.log"));
  EXPECT_EQ(wait_exit(bad2), 2) << slurp(path("bad2.log"));
}

}  // namespace
}  // namespace spikeflow
