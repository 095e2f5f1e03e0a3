// The real-time knobs (pipeline/realtime.h): CPU lists, the keys' ranges, what happens when a
// knob is or is not permitted on this machine (both outcomes are asserted exactly, so the tests
// pass with and without CAP_SYS_NICE / CAP_IPC_LOCK), graph workers taking their affinity, busy-
// poll ingest losing nothing, ZMQ_IMMEDIATE and libzmq's TCP_NODELAY on a live connection, and
// the decoder warm-up changing no prediction.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include <tbb/task_arena.h>

#include "core/time.h"
#include "models/load_decoder.h"
#include "models/trainer.h"
#include "pipeline/config_reader.h"
#include "pipeline/ingest.h"
#include "pipeline/live_pipeline.h"
#include "pipeline/pipeline_config.h"
#include "pipeline/realtime.h"
#include "pipeline/zmq_publisher.h"
#include "stages/native_packet.h"
#include "tests/common/test_support.h"
#include "tests/common/zmq_subscriber.h"

namespace spikeflow::pipeline {
namespace {

bool has_capability(int cap) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) == 0) return ((std::stoull(line.substr(7), nullptr, 16) >> cap) & 1) != 0;
  }
  return false;
}

/// The config error text for yaml (empty when it parses).
std::string config_error(const std::string& yaml) {
  try {
    (void)parse_pipeline_config(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return {};
}

TEST(RealtimeTest, cpu_lists_parse_and_bad_ones_say_why) {
  std::string why;
  EXPECT_EQ(parse_cpu_list("", &why), std::vector<int>{});
  EXPECT_EQ(parse_cpu_list("0-1,3", &why), (std::vector<int>{0, 1, 3}));
  EXPECT_EQ(parse_cpu_list(" 3 , 1-2 ,1", &why), (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(parse_cpu_list("7", &why), std::vector<int>{7});
  for (const char* bad : {"a", "1-", "-1", "3-1", "1,,2", "1.5", "99999"}) {
    EXPECT_FALSE(parse_cpu_list(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  EXPECT_FALSE(allowed_cpus().empty());
}

TEST(RealtimeTest, every_key_is_range_checked_with_one_line_naming_it) {
  EXPECT_EQ(config_error("realtime:\n  affinity:\n    graph: 0\n  sched_fifo_priority: 0\n"), "");
  const std::pair<const char*, const char*> cases[] = {
      {"realtime:\n  sched_fifo_priority: 100\n", "realtime.sched_fifo_priority"},
      {"realtime:\n  sched_fifo_priority: -1\n", "realtime.sched_fifo_priority"},
      {"realtime:\n  mlockall: maybe\n", "realtime.mlockall"},
      {"realtime:\n  affinity:\n    ingest: 3-1\n", "realtime.affinity.ingest"},
      {"realtime:\n  affinity:\n    ticker: x\n", "realtime.affinity.ticker"},
      {"realtime:\n  affinity:\n    graph: 1,,2\n", "realtime.affinity.graph"},
      {"realtime:\n  affinity:\n    zmq_io: 99999\n", "realtime.affinity.zmq_io"},
      {"ingest:\n  busy_poll_us: 1001\n", "ingest.busy_poll_us"},
      {"ingest:\n  transport: tcp\n  busy_poll_us: 10\n", "ingest.busy_poll_us"},
      {"decoder:\n  warmup_margin_us: 20001\n", "decoder.warmup_margin_us"},
      {"publish:\n  immediate: 2\n", "publish.immediate"},
  };
  for (const auto& [yaml, key] : cases) {
    const std::string e = config_error(yaml);
    EXPECT_NE(e.find(key), std::string::npos) << yaml << " -> " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
}

TEST(RealtimeTest, the_example_rig_config_reads) {
  const auto cfg = load_pipeline_config(SPIKEFLOW_SOURCE_DIR "/configs/live_rig_realtime.yaml");
  EXPECT_EQ(cfg.realtime.sched_fifo_priority, 0);  // privileged knobs stay commented out
  EXPECT_FALSE(cfg.realtime.mlockall);
}

TEST(RealtimeTest, a_cpu_outside_the_allowed_set_is_a_preflight_error_naming_the_key) {
  RealtimeConfig rt;
  rt.affinity_zmq_io = "1023";  // CPU_SETSIZE - 1: never in a test machine's set
  const auto errors = check_realtime(rt);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].rfind("realtime.affinity.zmq_io: CPU 1023 is not in this process's allowed "
                            "set (",
                            0),
            0u)
      << errors[0];
  EXPECT_TRUE(check_realtime(RealtimeConfig{}).empty());
  // The pipeline refuses it too (its last guard) before libzmq could abort on it.
  PipelineConfig cfg;
  cfg.ingest.transport = Transport::kNone;
  cfg.publish.endpoint = "tcp://127.0.0.1:*";
  cfg.realtime = rt;
  EXPECT_THROW(LivePipeline(cfg, models::make_untrained_possm(models::PossmConfig{}, {{1, 1}}, 2,
                                                              cfg.chunking.width_ns,
                                                              models::RuntimeOptions{})),
               RealtimeError);
}

TEST(RealtimeTest, sched_fifo_applies_or_names_the_privilege_it_needs) {
  rlimit rt{};
  getrlimit(RLIMIT_RTPRIO, &rt);
  const bool permitted = has_capability(/*CAP_SYS_NICE=*/23) || rt.rlim_cur >= 1;
  std::string error;
  int policy = -1;
  std::thread t([&] {  // a thread of its own: the policy goes with it
    try {
      set_thread_fifo(pthread_self(), 1);
    } catch (const RealtimeError& e) {
      error = e.what();
    }
    sched_param p{};
    pthread_getschedparam(pthread_self(), &policy, &p);
  });
  t.join();
  RealtimeConfig cfg;
  cfg.sched_fifo_priority = 1;
  if (permitted) {
    EXPECT_EQ(error, "");
    EXPECT_EQ(policy, SCHED_FIFO);
    EXPECT_TRUE(check_realtime(cfg).empty());
  } else {
    const std::string want =
        "realtime.sched_fifo_priority: SCHED_FIFO priority 1: Operation not permitted (needs "
        "CAP_SYS_NICE or an RLIMIT_RTPRIO of at least 1: ulimit -r)";
    EXPECT_EQ(error, want);
    EXPECT_EQ(check_realtime(cfg), std::vector<std::string>{want});
  }
}

TEST(RealtimeTest, mlockall_applies_or_names_the_limit_it_needs) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "locking memory under a sanitizer would populate its shadow mappings";
#else
  rlimit lim{};
  getrlimit(RLIMIT_MEMLOCK, &lim);
  // MCL_FUTURE only (locks nothing mapped now), undone at once: the test process stays as it was.
  const bool permitted = has_capability(/*CAP_IPC_LOCK=*/14) || lim.rlim_cur > 0;
  std::string error;
  try {
    lock_process_memory(MCL_FUTURE);
    munlockall();
  } catch (const RealtimeError& e) {
    error = e.what();
  }
  if (permitted) {
    EXPECT_EQ(error, "");
  } else {
    EXPECT_EQ(error,
              "realtime.mlockall: mlockall: Operation not permitted (needs CAP_IPC_LOCK or a "
              "non-zero RLIMIT_MEMLOCK)");
  }
#endif
}

TEST(RealtimeTest, graph_workers_take_the_arena_affinity) {
  const int cpu = allowed_cpus().back();
  RealtimeConfig cfg;
  cfg.affinity_graph = std::to_string(cpu);
  tbb::task_arena arena(1, /*reserved_for_masters=*/0);
  arena.initialize();
  ArenaRealtimeObserver observer(arena, cfg);
  std::mutex m;
  std::vector<int> seen;  // CPUs in the worker's affinity mask
  testing::Latch done;
  arena.enqueue([&] {  // enqueued work runs on a worker
    cpu_set_t set;
    CPU_ZERO(&set);
    pthread_getaffinity_np(pthread_self(), sizeof(set), &set);
    std::lock_guard lock(m);
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) seen.push_back(c);
    done.set();
  });
  ASSERT_TRUE(done.wait_for(std::chrono::seconds(30)));
  ASSERT_TRUE(testing::wait_until([&] { return observer.applied() >= 1; }));
  std::lock_guard lock(m);
  EXPECT_EQ(seen, std::vector<int>{cpu});
  EXPECT_GE(observer.applied(), 1u);
  EXPECT_EQ(observer.failures(), 0u);
}

TEST(RealtimeTest, a_failing_thread_setup_fails_ingest_start) {
  IngestConfig c;
  c.port = 0;
  auto ingest = make_ingest(
      c, [](core::EventBatch&) {}, [] { throw RealtimeError("realtime.affinity.ingest: no"); });
  try {
    ingest->start();
    FAIL() << "start() succeeded";
  } catch (const RealtimeError& e) {
    EXPECT_STREQ(e.what(), "realtime.affinity.ingest: no");
  }
  ingest->stop();
}

TEST(RealtimeTest, busy_poll_ingest_delivers_every_packet) {
  IngestConfig c;
  c.port = 0;
  c.busy_poll_us = 1000;
  std::mutex m;
  size_t events = 0;
  int64_t last_device = -1;
  bool in_order = true;
  auto ingest = make_ingest(c, [&](core::EventBatch& b) {
    std::lock_guard lock(m);
    events += b.events.size();
    in_order = in_order && b.device_time_ns > last_device;
    last_device = b.device_time_ns;
  });
  ingest->start();
  constexpr int kPackets = 2000;
  boost::asio::io_context io;
  boost::asio::ip::udp::socket s(io, boost::asio::ip::udp::v4());
  const boost::asio::ip::udp::endpoint to(boost::asio::ip::make_address("127.0.0.1"),
                                          ingest->port());
  std::vector<uint8_t> bytes;
  for (int i = 0; i < kPackets; ++i) {
    stages::NativePacketHeader h;
    h.stream_id = 1;
    h.sequence = static_cast<uint32_t>(i);
    h.device_time_ns = (i + 1) * 1'000'000LL;
    const std::vector<core::SpikeEvent> ev{{i * 1'000'000LL, 1, 1, 0}, {i * 1'000'000LL + 1, 2, 1, 0}};
    bytes.clear();
    stages::encode_native_packet(h, ev, bytes);
    s.send_to(boost::asio::buffer(bytes), to);
    if (i % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(1));  // bursts and gaps
  }
  EXPECT_TRUE(testing::wait_until([&] {
    std::lock_guard lock(m);
    return events == 2 * kPackets;
  }));
  ingest->stop();
  std::lock_guard lock(m);
  EXPECT_EQ(events, 2u * kPackets);
  EXPECT_TRUE(in_order);
  EXPECT_EQ(ingest->stats().packets_accepted, static_cast<uint64_t>(kPackets));
}

/// TCP_NODELAY of every connected TCP socket of this process whose local or peer port is port.
std::vector<int> nodelay_of_connections_on(uint16_t port) {
  std::vector<int> out;
  DIR* d = opendir("/proc/self/fd");
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    const int fd = std::atoi(e->d_name);
    if (fd <= 2) continue;
    int type = 0;
    socklen_t len = sizeof(type);
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) continue;
    sockaddr_in local{}, peer{};
    socklen_t ll = sizeof(local), pl = sizeof(peer);
    if (getsockname(fd, reinterpret_cast<sockaddr*>(&local), &ll) != 0 ||
        local.sin_family != AF_INET || getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &pl) != 0)
      continue;  // a listener has no peer
    if (ntohs(local.sin_port) != port && ntohs(peer.sin_port) != port) continue;
    int nodelay = -1;
    len = sizeof(nodelay);
    getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len);
    out.push_back(nodelay);
  }
  closedir(d);
  return out;
}

TEST(RealtimeTest, immediate_is_set_and_libzmq_sets_tcp_nodelay_on_both_ends) {
  zmq::context_t ctx(1);
  PublishConfig cfg;
  cfg.endpoint = "tcp://127.0.0.1:*";
  cfg.immediate = true;
  ZmqPublisher pub(ctx, cfg);
  EXPECT_TRUE(pub.immediate());
  const std::string ep = pub.endpoint();
  const auto port = static_cast<uint16_t>(std::stoi(ep.substr(ep.rfind(':') + 1)));
  testing::ZmqSubscriber sub(ep);
  // Both ends of the loopback connection live in this process: the PUB's accepted socket and the
  // SUB's connected one.
  std::vector<int> nodelay;
  ASSERT_TRUE(testing::wait_until([&] {
    nodelay = nodelay_of_connections_on(port);
    return nodelay.size() >= 2;
  }));
  for (int v : nodelay) EXPECT_EQ(v, 1);
  cfg.immediate = false;
  cfg.endpoint = "tcp://127.0.0.1:*";
  ZmqPublisher plain(ctx, cfg);
  EXPECT_FALSE(plain.immediate());
}

/// Predictions of a live pipeline (real ticker, in-process input) fed one packet per chunk; with
/// warmup_margin_us > 0 each packet waits until the warm-up after the chunk it closed was issued,
/// so warm-ups really run between the chunks. Chunks close by the event watermark only (the
/// deadline is seconds away), so both runs decode the same chunks.
std::vector<core::Prediction> predictions_with_warmup(const std::string& checkpoint,
                                                      int warmup_margin_us, uint64_t* warmups) {
  PipelineConfig cfg;
  cfg.ingest.transport = Transport::kNone;
  cfg.publish.enabled = false;
  cfg.metrics.print_interval_s = 0;
  cfg.chunking.adaptive_grace = false;
  cfg.chunking.deadline_grace_ns = 5'000'000'000;
  cfg.chunking.max_grace_ns = 5'000'000'000;
  cfg.decoder.warmup_margin_us = warmup_margin_us;
  std::mutex m;
  std::vector<core::Prediction> got;
  LiveOptions lo;
  lo.on_prediction = [&](const core::Prediction& p) {
    std::lock_guard lock(m);
    got.push_back(p);
  };
  LivePipeline live(cfg, models::load_decoder(checkpoint, models::RuntimeOptions{}), lo);
  live.start();
  const int64_t w = cfg.chunking.width_ns;
  constexpr int kChunks = 30;
  for (int k = 0; k < kChunks; ++k) {
    core::EventBatch b;
    b.arrival_host_ns = core::host_now_ns();
    b.device_time_ns = k * w + w / 2;
    for (int i = 0; i < 8; ++i)
      b.events.push_back({k * w + i * 5'000'000LL, static_cast<uint32_t>(1 + (k + i) % 4), 1, 0});
    live.push(b);
    if (warmup_margin_us > 0 && k > 0) {  // packet k closed chunk k - 1
      EXPECT_TRUE(testing::wait_until([&] {
        const auto d = live.stats().decode;
        return d.warmups + d.warmups_skipped >= static_cast<uint64_t>(k);
      }));
    }
  }
  live.stop();
  *warmups = live.stats().decode.warmups;
  return got;
}

TEST(RealtimeWarmupTest, decoder_warmup_changes_no_prediction) {
  testing::TempDir dir("warmup");
  const std::string ckpt = (dir.path() / "m.ckpt").string();
  models::save_untrained_possm(ckpt, models::PossmConfig{}, {{1, 1}, {2, 1}, {3, 1}, {4, 1}}, 2,
                               PipelineConfig{}.chunking.width_ns, /*seed=*/3);
  uint64_t warm_on = 0, warm_off = 0;
  const auto on = predictions_with_warmup(ckpt, 45'000, &warm_on);
  const auto off = predictions_with_warmup(ckpt, 0, &warm_off);
  EXPECT_GT(warm_on, 0u);
  EXPECT_EQ(warm_off, 0u);
  ASSERT_EQ(on.size(), off.size());
  ASSERT_GE(on.size(), 30u);
  for (size_t i = 0; i < on.size(); ++i) {
    EXPECT_EQ(on[i].seq, off[i].seq);
    EXPECT_EQ(on[i].n_tokens, off[i].n_tokens);
    EXPECT_EQ(std::memcmp(on[i].values.data(), off[i].values.data(),
                          sizeof(float) * static_cast<size_t>(on[i].output_dim)),
              0)
        << "chunk " << on[i].seq;
  }
}

/// The decoder thread takes realtime.affinity.decoder, and predictions reach on_prediction on it
/// (the publish runs there): every callback sees the one CPU in its thread's mask.
TEST(RealtimeWarmupTest, the_decoder_thread_takes_its_affinity) {
  testing::TempDir dir("decoder_affinity");
  const std::string ckpt = (dir.path() / "m.ckpt").string();
  models::save_untrained_possm(ckpt, models::PossmConfig{}, {{1, 1}, {2, 1}}, 2,
                               PipelineConfig{}.chunking.width_ns, /*seed=*/3);
  const int cpu = allowed_cpus().back();
  PipelineConfig cfg;
  cfg.ingest.transport = Transport::kNone;
  cfg.publish.enabled = false;
  cfg.metrics.print_interval_s = 0;
  cfg.realtime.affinity_decoder = std::to_string(cpu);
  std::mutex m;
  std::vector<std::vector<int>> masks;
  LiveOptions lo;
  lo.on_prediction = [&](const core::Prediction&) {
    cpu_set_t set;
    CPU_ZERO(&set);
    pthread_getaffinity_np(pthread_self(), sizeof(set), &set);
    std::vector<int> mask;
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) mask.push_back(c);
    std::lock_guard lock(m);
    masks.push_back(mask);
  };
  LivePipeline live(cfg, models::load_decoder(ckpt, models::RuntimeOptions{}), lo);
  live.start();
  const int64_t w = cfg.chunking.width_ns;
  for (int k = 0; k < 6; ++k) {
    core::EventBatch b;
    b.arrival_host_ns = core::host_now_ns();
    b.device_time_ns = k * w + w / 2;
    b.events.push_back({k * w + w / 2, 1, 1, 0});
    live.push(b);
  }
  live.stop();
  std::lock_guard lock(m);
  ASSERT_GE(masks.size(), 5u);
  for (const auto& mask : masks) EXPECT_EQ(mask, std::vector<int>{cpu});
}

}  // namespace
}  // namespace spikeflow::pipeline
