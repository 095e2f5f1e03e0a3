// The publisher's wire format, checked by a separate process: scripts/example_client.py (pyzmq +
// struct only, Debian's python3-zmq) subscribes and prints what it decoded. Without pyzmq those
// tests skip with a message saying what to install.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "core/time.h"
#include "pipeline/zmq_publisher.h"
#include "tests/common/test_support.h"

namespace spikeflow::pipeline {
namespace {

constexpr const char* kPython = "/usr/bin/python3";

/// Whether the Python client can run here (python3 with pyzmq); asked once per process.
bool have_pyzmq() {
  static const bool ok =
      std::system((std::string(kPython) + " -c 'import zmq' >/dev/null 2>&1").c_str()) == 0;
  return ok;
}

constexpr const char* kNoPyzmq =
    " -c 'import zmq' failed: install pyzmq (Debian: python3-zmq) to run this test";

std::string run_client_against(PublishConfig cfg) {
  zmq::context_t ctx(1);
  ZmqPublisher pub(ctx, cfg);
  const std::string cmd = std::string(kPython) +
                          " " SPIKEFLOW_SOURCE_DIR "/scripts/example_client.py --endpoint " +
                          pub.endpoint() + " --count 3 --timeout-s 60 2>&1";
  FILE* child = popen(cmd.c_str(), "r");
  if (!child) return "popen failed";
  // Publish until the client has what it needs and exits (a SUB joins a PUB asynchronously, so
  // early messages may be missed: the client reads three, whichever they are).
  std::string output;
  std::thread reader([&] {
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), child)) > 0) output.append(buf.data(), n);
  });
  core::Prediction p;
  p.output_dim = 2;
  p.values = {1.25f, -3.5f};
  p.n_tokens = 42;
  p.flags = 1u << 3;
  p.start_ns = 1'000'000'000;
  p.end_ns = 1'050'000'000;
  p.timing.trigger_arrival_ns = 17;
  // One message per 5 ms until the client exits (it has read three, or its own timeout passed).
  // The loop's deadline is a backstop only: the client's timeout ends it first.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  testing::Latch client_done;
  std::thread waiter([&] {
    reader.join();
    client_done.set();
  });
  while (!client_done.wait_for(std::chrono::milliseconds(5)) &&
         std::chrono::steady_clock::now() < deadline) {
    ++p.seq;
    pub.publish(p);
  }
  waiter.join();
  pclose(child);
  return output;
}

TEST(ZmqPublisherTest, python_client_decodes_the_binary_message) {
  if (!have_pyzmq()) GTEST_SKIP() << kPython << kNoPyzmq;
  PublishConfig cfg;
  cfg.endpoint = "tcp://127.0.0.1:*";
  const std::string out = run_client_against(cfg);
  EXPECT_NE(out.find(R"("values": [1.25, -3.5])"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("n_tokens": 42)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("flag_names": ["catch_up"])"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("trigger_arrival_ns": 17)"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("topic": "pred")"), std::string::npos) << out;
}

TEST(ZmqPublisherTest, python_client_reads_the_json_message) {
  if (!have_pyzmq()) GTEST_SKIP() << kPython << kNoPyzmq;
  PublishConfig cfg;
  cfg.endpoint = "tcp://127.0.0.1:*";
  cfg.format = PublishFormat::kJson;
  const std::string out = run_client_against(cfg);
  EXPECT_NE(out.find(R"("values": [1.25, -3.5])"), std::string::npos) << out;
  EXPECT_NE(out.find(R"("start_ns": 1000000000)"), std::string::npos) << out;
}

TEST(ZmqPublisherTest, bind_failure_names_the_endpoint) {
  zmq::context_t ctx(1);
  PublishConfig cfg;
  cfg.endpoint = "tcp://127.0.0.1:*";
  ZmqPublisher first(ctx, cfg);
  cfg.endpoint = first.endpoint();
  try {
    ZmqPublisher second(ctx, cfg);
    FAIL() << "binding the same port twice must fail";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(first.endpoint()), std::string::npos);
  }
}

}  // namespace
}  // namespace spikeflow::pipeline
