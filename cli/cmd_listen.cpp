#include <fmt/format.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <zmq.hpp>

#include "cli/commands.h"
#include "cli/exit_codes.h"
#include "cli/flag_checks.h"
#include "cli/listen_csv.h"
#include "cli/signals.h"
#include "core/chunk_flags.h"
#include "core/latency_histogram.h"
#include "core/time.h"
#include "pipeline/contract_checker.h"
#include "stages/prediction_codec.h"

namespace spikeflow::cli {

namespace {

struct ListenArgs {
  std::string endpoint = "tcp://127.0.0.1:47001";
  std::string topic = "pred";
  std::string out;
  int64_t count = 0;
  double idle_timeout_s = 0;
  double timeout_s = 0;
  bool quiet = false;
  bool check = false;
};

}  // namespace

Command add_listen(CLI::App& app) {
  auto a = std::make_shared<ListenArgs>();
  app.add_option("-e,--endpoint", a->endpoint, "publisher endpoint")->capture_default_str();
  app.add_option("--topic", a->topic, "topic to subscribe to")->capture_default_str();
  app.add_option("-o,--out", a->out, "write every prediction to this CSV file");
  non_negative(
      app.add_option("--count", a->count, "stop after this many predictions (0 = no limit)"));
  non_negative(app.add_option("--idle-timeout-s", a->idle_timeout_s,
                              "stop after this long without a message, once one came (0 = never)"));
  non_negative(
      app.add_option("--timeout-s", a->timeout_s, "stop after this long in all (0 = no limit)"));
  app.add_flag("-q,--quiet", a->quiet, "no per-second lines");
  app.add_flag("--check", a->check,
               "check the stream against the live contract (pipeline/contract_checker.h); exit 4 "
               "on a violation");
  return [a] {
    const sigset_t signals = block_termination_signals();
    zmq::context_t ctx(1);
    zmq::socket_t sub(ctx, zmq::socket_type::sub);
    sub.set(zmq::sockopt::linger, 0);
    sub.set(zmq::sockopt::rcvhwm, 100000);
    sub.set(zmq::sockopt::subscribe, a->topic);
    sub.connect(a->endpoint);
    std::ofstream csv;
    if (!a->out.empty()) {
      csv.open(a->out);
      if (!csv) throw std::runtime_error(a->out + ": cannot open for writing");
      csv << kListenCsvHeader << '\n';
    }
    core::LatencyHistogram e2e, pipeline_hist, decode_hist;
    uint64_t received = 0, gaps = 0, out_of_order = 0, non_finite = 0, malformed = 0;
    uint64_t by_deadline = 0, empty = 0, catch_up = 0, repaired = 0;
    int64_t last_seq = -1;
    const int64_t t0 = core::host_now_ns();
    int64_t last_msg = 0, last_print = t0;
    uint64_t received_at_print = 0;
    core::Prediction p;
    pipeline::ContractChecker checker;
    std::string err;
    zmq::pollitem_t items[] = {{sub.handle(), 0, ZMQ_POLLIN, 0}};
    for (;;) {
      if (wait_termination_signal(signals, 0)) break;
      const int64_t now0 = core::host_now_ns();
      if (a->timeout_s > 0 && now0 - t0 > a->timeout_s * 1e9) break;
      if (a->idle_timeout_s > 0 && last_msg > 0 && now0 - last_msg > a->idle_timeout_s * 1e9) break;
      if (a->count > 0 && received >= static_cast<uint64_t>(a->count)) break;
      if (!a->quiet && now0 - last_print >= core::kNsPerS) {
        fmt::print(
            "listen: t={:.0f}s received={} (+{}) gaps={} latency p50={:.0f}us p99={:.0f}us "
            "last=({:.2f}, {:.2f})\n",
            (now0 - t0) * 1e-9, received, received - received_at_print, gaps,
            e2e.percentile(0.5) / 1e3, e2e.percentile(0.99) / 1e3, p.values[0], p.values[1]);
        std::fflush(stdout);
        last_print = now0;
        received_at_print = received;
      }
      zmq::poll(items, 1, std::chrono::milliseconds(50));
      if (!(items[0].revents & ZMQ_POLLIN)) continue;
      zmq::message_t topic, payload;
      if (!sub.recv(topic, zmq::recv_flags::dontwait)) continue;
      if (!topic.more() || !sub.recv(payload, zmq::recv_flags::dontwait)) {
        ++malformed;
        continue;
      }
      while (payload.more()) {  // never leave a stray frame behind
        zmq::message_t extra;
        (void)sub.recv(extra, zmq::recv_flags::dontwait);
        payload = std::move(extra);
      }
      const int64_t recv_ns = core::host_now_ns();
      last_msg = recv_ns;
      if (!stages::decode_prediction({static_cast<const uint8_t*>(payload.data()), payload.size()},
                                     p, &err)) {
        ++malformed;
        continue;
      }
      ++received;
      checker.feed(p, recv_ns);
      if (last_seq >= 0 && p.seq > last_seq + 1)
        gaps += static_cast<uint64_t>(p.seq - last_seq - 1);
      if (last_seq >= 0 && p.seq <= last_seq) ++out_of_order;
      last_seq = p.seq;
      for (int d = 0; d < p.output_dim; ++d) non_finite += std::isfinite(p.values[d]) ? 0 : 1;
      by_deadline += core::has_flag(p.flags, core::ChunkFlag::kClosedByDeadline);
      empty += core::has_flag(p.flags, core::ChunkFlag::kEmpty);
      catch_up += core::has_flag(p.flags, core::ChunkFlag::kCatchUp);
      repaired += core::has_flag(p.flags, core::ChunkFlag::kOutputRepaired);
      if (p.timing.trigger_arrival_ns > 0) {
        e2e.record(recv_ns - p.timing.trigger_arrival_ns);
        pipeline_hist.record(p.timing.publish_ns - p.timing.trigger_arrival_ns);
      }
      decode_hist.record(p.timing.decode_end_ns - p.timing.decode_start_ns);
      if (csv) {
        csv << p.seq << ',' << p.chunk_index << ',' << p.epoch << ',' << p.start_ns << ','
            << p.end_ns << ',' << p.flags << ',' << p.n_tokens << ','
            << fmt::format("{:.9g},{:.9g}", p.values[0], p.output_dim > 1 ? p.values[1] : 0.0f)
            << ',' << p.timing.trigger_arrival_ns << ',' << p.timing.publish_ns << ',' << recv_ns
            << '\n';
      }
    }
    if (csv) csv.close();
    fmt::print(
        "listen: received {} predictions; seq gaps {}, out of order {}, non-finite values {}, "
        "malformed {}\n",
        received, gaps, out_of_order, non_finite, malformed);
    fmt::print("listen: flags: closed by deadline {}, empty {}, catch-up {}, repaired {}\n",
               by_deadline, empty, catch_up, repaired);
    fmt::print("listen: latency closing packet arrival -> received here: {}\n", e2e.summary_us());
    fmt::print("listen: latency closing packet arrival -> published:     {}\n",
               pipeline_hist.summary_us());
    fmt::print("listen: decode time per call:                            {}\n",
               decode_hist.summary_us());
    if (a->check) {
      fmt::print("listen: {}", checker.summary());
      if (checker.violations() > 0) return static_cast<int>(kMismatch);
    }
    return 0;
  };
}

}  // namespace spikeflow::cli
