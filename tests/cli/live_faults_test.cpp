// The reported live failures, reproduced with the real binaries as separate processes:
// `spikeflow run` (the pipeline), `spikeflow send` with injected faults, `spikeflow listen --check`
// writing its CSV; the stream is then checked again here with pipeline::ContractChecker.
// Synchronisation waits on log lines and process exits with deadlines; the only sleeps are the
// length of a kill -STOP (the fault itself). Timing is asserted only as generous bounds.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>
#include <thread>

#include "core/chunk_flags.h"
#include "core/time.h"
#include "models/trainer.h"
#include "pipeline/contract_checker.h"
#include "pipeline/listen_csv.h"
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
// The contract's silence bound (2 width + lateness + grace + clock_jump + tick, ~0.5 s with the
// defaults) plus a wide margin for a loaded machine; a bound, not a latency measurement.
constexpr int64_t kMaxSilenceNs = 1'500'000'000;

class LiveFaultsTest : public ::testing::Test {
 protected:
  std::string path(const std::string& name) const { return dir_.file(name); }

  void SetUp() override {
    const pid_t synth =
        start({"synth", "-o", path("s.sfs"), "--units", "16", "--duration-s", "7", "--seed", "3"},
              path("synth.log"));
    ASSERT_EQ(wait_exit(synth), 0) << slurp(path("synth.log"));
    const auto session = replay::load_session(path("s.sfs"));
    models::save_untrained_possm(path("m.ckpt"), models::PossmConfig{}, session.units, 2, kWidthNs);
    run_ = start(
        {"run", "--checkpoint", path("m.ckpt"), "--port", "0", "--publish", "tcp://127.0.0.1:*"},
        path("run.log"));
    const std::regex ready(R"(ingest \S+ \S+ \S+:(\d+) \| publish (\S+))");
    std::smatch m;
    std::string log;
    ASSERT_TRUE(testing::wait_until([&] {
      log = slurp(path("run.log"));
      return std::regex_search(log, m, ready);
    })) << log;
    port_ = m[1].str();
    endpoint_ = m[2].str();
    listen_ = start({"listen", "-e", endpoint_, "-o", path("p.csv"), "--check", "-q",
                     "--idle-timeout-s", "5", "--timeout-s", "60"},
                    path("listen.log"));
  }

  void TearDown() override {
    if (run_ > 0) {
      kill(run_, SIGCONT);
      kill(run_, SIGKILL);
      wait_exit(run_);
    }
    if (listen_ > 0) {
      kill(listen_, SIGKILL);
      wait_exit(listen_);
    }
  }

  /// Starts the sender with extra flags; its progress lines ("send: t=Ns") mark its clock.
  pid_t send(const std::vector<std::string>& extra) {
    std::vector<std::string> args{"send", "-s", path("s.sfs"), "--port", port_};
    args.insert(args.end(), extra.begin(), extra.end());
    send_start_ns_ = core::host_now_ns();
    return start(args, path("send.log"));
  }
  bool sender_reached(int s) const {
    const std::string log = slurp(path("send.log"));
    static const std::regex progress(R"(send: t=(\d+)s)");
    for (auto it = std::sregex_iterator(log.begin(), log.end(), progress);
         it != std::sregex_iterator(); ++it) {
      if (std::stoi((*it)[1].str()) >= s) return true;
    }
    return false;
  }

  /// Waits for the sender, drains the pipeline (SIGTERM) and the subscriber (idle timeout, longer
  /// than the 3 s stop), and
  /// checks the subscriber's CSV again here. Returns the rows.
  std::vector<pipeline::ReceivedPrediction> finish(pid_t sender) {
    EXPECT_EQ(wait_exit(sender), 0) << slurp(path("send.log"));
    kill(run_, SIGTERM);
    EXPECT_EQ(wait_exit(run_), 0) << slurp(path("run.log"));
    run_ = -1;
    const int listen_rc = wait_exit(listen_);
    listen_ = -1;
    EXPECT_EQ(listen_rc, 0) << slurp(path("listen.log"));  // 4 = a contract violation
    auto rows = pipeline::read_listen_csv(path("p.csv"));
    for (const auto& r : rows) checker_.feed(r.prediction, r.receive_ns);
    EXPECT_EQ(checker_.violations(), 0u) << checker_.summary() << slurp(path("listen.log"));
    EXPECT_EQ(checker_.violations(pipeline::ContractViolation::kDuplicateChunk), 0u);
    EXPECT_EQ(checker_.lost(), 0u) << checker_.summary();
    EXPECT_GT(rows.size(), 100u) << checker_.summary();
    std::cout << checker_.summary();  // the figures, for the log
    return rows;
  }

  /// The first row of an epoch after the first one, or nullptr.
  static const pipeline::ReceivedPrediction* first_of_next_epoch(
      const std::vector<pipeline::ReceivedPrediction>& rows) {
    for (const auto& r : rows) {
      if (r.prediction.epoch != rows.front().prediction.epoch) return &r;
    }
    return nullptr;
  }

  testing::TempDir dir_{"live_faults"};
  pid_t run_ = -1, listen_ = -1;
  std::string port_, endpoint_;
  int64_t send_start_ns_ = 0;
  pipeline::ContractChecker checker_;
};

// Issue 11, failure 1: a stalled pipeline republished chunks and seq went backwards.
TEST_F(LiveFaultsTest, kill_stop_under_ten_times_the_rate_flags_late_chunks_and_duplicates_none) {
  const pid_t sender = send({"--rate-multiplier", "10"});
  ASSERT_TRUE(testing::wait_until([&] { return sender_reached(2); })) << slurp(path("send.log"));
  kill(run_, SIGSTOP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the fault: stopped for 0.3 s
  kill(run_, SIGCONT);
  ASSERT_TRUE(testing::wait_until([&] { return sender_reached(4); })) << slurp(path("send.log"));
  kill(run_, SIGSTOP);
  std::this_thread::sleep_for(std::chrono::seconds(3));  // the fault: stopped for 3 s
  kill(run_, SIGCONT);
  finish(sender);
  // The 3 s stop passed ~60 deadlines: those chunks are published once, flagged late.
  EXPECT_GT(checker_.late_flagged(), 0u) << checker_.summary();
}

// Failure 2: a device clock that jumps back 20 s stopped all output.
TEST_F(LiveFaultsTest, device_clock_back_twenty_seconds_resumes_in_a_new_epoch_without_silence) {
  const pid_t sender = send({"--clock-jump-at-s", "3", "--clock-jump-s", "-20"});
  const auto rows = finish(sender);
  const auto* first = first_of_next_epoch(rows);
  ASSERT_NE(first, nullptr) << checker_.summary();
  EXPECT_TRUE(core::has_flag(first->prediction.flags, core::ChunkFlag::kNewEpoch));
  // Before the jump the device clock ran from 20 s (send's offset for a jump back) to 23 s. The
  // old epoch's last chunk before 23 s closes about when the jump happens; the new epoch must
  // begin within a bounded host time of it.
  int64_t jump_seen_ns = 0;
  for (const auto& r : rows) {
    if (r.prediction.epoch == rows.front().prediction.epoch &&
        r.prediction.end_ns <= 23'000'000'000) {
      jump_seen_ns = r.receive_ns;
    }
  }
  ASSERT_GT(jump_seen_ns, 0);
  EXPECT_LT(first->receive_ns - jump_seen_ns, 2'000'000'000) << checker_.summary();
  EXPECT_LT(checker_.max_silence_ns(), kMaxSilenceNs) << checker_.summary();
  size_t after = 0;
  for (const auto& r : rows) after += r.prediction.epoch == first->prediction.epoch;
  EXPECT_GT(after, 40u) << "about 4 s of chunks on the new clock";
}

// Failure 3: a forward jump skipped seq with no flag.
TEST_F(LiveFaultsTest, device_clock_forward_hundred_seconds_is_a_new_epoch_with_seq_plus_one) {
  const pid_t sender = send({"--clock-jump-at-s", "3", "--clock-jump-s", "100"});
  const auto rows = finish(sender);
  const auto* first = first_of_next_epoch(rows);
  ASSERT_NE(first, nullptr) << checker_.summary();
  EXPECT_TRUE(core::has_flag(first->prediction.flags, core::ChunkFlag::kNewEpoch));
  EXPECT_EQ(first->prediction.seq, (first - 1)->prediction.seq + 1);
  EXPECT_GE(first->prediction.start_ns, 100'000'000'000);
  EXPECT_EQ(checker_.epochs_seen(), 2u) << checker_.summary();
}

// Failure 2, second form: a device restart with its sequence numbers reset.
TEST_F(LiveFaultsTest, device_restart_with_sequence_reset_resumes) {
  const pid_t sender = send({"--restart-at-s", "3"});
  const auto rows = finish(sender);
  const auto* first = first_of_next_epoch(rows);
  ASSERT_NE(first, nullptr) << checker_.summary();
  EXPECT_TRUE(core::has_flag(first->prediction.flags, core::ChunkFlag::kNewEpoch));
  EXPECT_LT(first->prediction.start_ns, 1'000'000'000) << "the new epoch is on the restarted clock";
  size_t after = 0;
  for (const auto& r : rows) after += r.prediction.epoch == first->prediction.epoch;
  EXPECT_GT(after, 40u) << "about 4 s of chunks after the restart";
  EXPECT_LT(checker_.max_silence_ns(), kMaxSilenceNs) << checker_.summary();
}

}  // namespace
}  // namespace spikeflow
