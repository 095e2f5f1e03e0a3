#include "pipeline/zmq_publisher.h"

#include <pthread.h>
#include <sched.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "core/time.h"
#include "pipeline/realtime.h"
#include "stages/prediction_codec.h"

namespace spikeflow::pipeline {

namespace {

constexpr size_t kZ85KeyChars = 40;  // a 32-byte CURVE key in Z85 (ZeroMQ RFC 32)
constexpr const char* kZapEndpoint = "inproc://zeromq.zap.01";  // fixed by ZeroMQ RFC 27

/// 32 binary key bytes from z85 text (already checked for length).
std::string z85_to_binary(const std::string& z85) {
  std::string bin(32, '\0');
  if (!zmq_z85_decode(reinterpret_cast<uint8_t*>(bin.data()), z85.c_str())) return {};
  return bin;
}

}  // namespace

bool curve_available() { return zmq_has("curve") != 0; }

void configure_io_threads(zmq::context_t& context, const RealtimeConfig& config) {
  const auto set = [&](int option, int value, const char* key) {
    if (zmq_ctx_set(context.handle(), option, value) != 0) {
      throw RealtimeError(fmt::format("{}: zmq_ctx_set({}, {}): {}", key, option, value,
                                      zmq_strerror(zmq_errno())));
    }
  };
  std::string why;
  const auto cpus = parse_cpu_list(config.affinity_zmq_io, &why);
  if (!cpus) throw RealtimeError("realtime.affinity.zmq_io: " + why);
  for (int c : *cpus) set(ZMQ_THREAD_AFFINITY_CPU_ADD, c, "realtime.affinity.zmq_io");
  if (config.sched_fifo_priority > 0) {
    set(ZMQ_THREAD_SCHED_POLICY, SCHED_FIFO, "realtime.sched_fifo_priority");
    set(ZMQ_THREAD_PRIORITY, config.sched_fifo_priority, "realtime.sched_fifo_priority");
  }
}

bool endpoint_is_loopback(const std::string& endpoint) {
  if (endpoint.rfind("ipc://", 0) == 0 || endpoint.rfind("inproc://", 0) == 0) return true;
  if (endpoint.rfind("tcp://", 0) != 0) return false;
  std::string host =
      endpoint.substr(6, endpoint.rfind(':') == std::string::npos || endpoint.rfind(':') < 6
                             ? std::string::npos
                             : endpoint.rfind(':') - 6);
  if (const auto semi = host.find(';'); semi != std::string::npos)
    host = host.substr(semi + 1);  // source;dest
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  if (host == "localhost" || host == "lo" || host == "::1") return true;
  return host.rfind("127.", 0) == 0 && host.find_first_not_of("0123456789.") == std::string::npos;
}

std::string read_curve_key_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(what + ": cannot read key file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  const auto b = text.find_first_not_of(" \t\r\n"), e = text.find_last_not_of(" \t\r\n");
  text = b == std::string::npos ? std::string() : text.substr(b, e - b + 1);
  if (text.size() != kZ85KeyChars || z85_to_binary(text).empty()) {
    throw std::runtime_error(what + ": '" + path +
                             "' is not a CURVE key (40 characters of Z85 text, as written by "
                             "`spikeflow keygen`)");
  }
  return text;
}

ZmqPublisher::ZmqPublisher(zmq::context_t& context, const PublishConfig& config)
    : socket_(context, zmq::socket_type::pub),
      topic_(config.topic),
      json_(config.format == PublishFormat::kJson) {
  if (!config.allow_remote && !endpoint_is_loopback(config.endpoint)) {
    throw std::runtime_error(
        "publish.endpoint " + config.endpoint +
        " is not loopback: set publish.allow_remote: true to publish beyond this host");
  }
  socket_.set(zmq::sockopt::linger, config.linger_ms);
  socket_.set(zmq::sockopt::sndhwm, config.send_high_water_mark);
  socket_.set(zmq::sockopt::immediate, config.immediate);
  if (!config.curve_secret_key_file.empty()) {
    if (!curve_available()) {
      throw std::runtime_error(
          "publish.curve_secret_key_file: this libzmq was built without CURVE "
          "(zmq_has(\"curve\") is false); install a libzmq with libsodium/tweetnacl");
    }
    const std::string secret =
        read_curve_key_file(config.curve_secret_key_file, "publish.curve_secret_key_file");
    if (!config.curve_public_key_file.empty()) {
      const std::string pub =
          read_curve_key_file(config.curve_public_key_file, "publish.curve_public_key_file");
      char derived[kZ85KeyChars + 1] = {};
      if (zmq_curve_public(derived, secret.c_str()) != 0 || pub != derived) {
        throw std::runtime_error("publish.curve_public_key_file: '" + config.curve_public_key_file +
                                 "' does not match publish.curve_secret_key_file");
      }
    }
    if (!config.curve_clients_dir.empty()) start_zap(context, config.curve_clients_dir);
    socket_.set(zmq::sockopt::curve_server, true);
    socket_.set(zmq::sockopt::curve_secretkey, z85_to_binary(secret));
  } else if (!config.curve_clients_dir.empty() || !config.curve_public_key_file.empty()) {
    throw std::runtime_error(
        "publish.curve_clients_dir / curve_public_key_file need publish.curve_secret_key_file");
  }
  monitor_ =
      std::make_unique<SubscriberMonitor>(context, socket_, "publish", [](size_t n, bool joined) {
        spdlog::info("publish: subscriber {} ({} connected)", joined ? "joined" : "left", n);
      });
  try {
    socket_.bind(config.endpoint);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error("publish: cannot bind " + config.endpoint + ": " + e.what());
  }
  endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
}

void ZmqPublisher::start_zap(zmq::context_t& context, const std::string& clients_dir) {
  std::set<std::string> authorised;  // 32-byte binary public keys
  std::error_code ec;
  std::filesystem::directory_iterator it(clients_dir, ec);
  if (ec)
    throw std::runtime_error("publish.curve_clients_dir: cannot read '" + clients_dir +
                             "': " + ec.message());
  for (const auto& entry : it) {
    if (entry.path().extension() != ".key" || !entry.is_regular_file()) continue;
    authorised.insert(
        z85_to_binary(read_curve_key_file(entry.path().string(), "publish.curve_clients_dir")));
  }
  if (authorised.empty()) {
    throw std::runtime_error("publish.curve_clients_dir: no client public keys (*.key) in '" +
                             clients_dir + "'");
  }
  // Bound here, before the PUB socket binds, so that no handshake can precede the handler; from
  // then on the thread owns the socket (thread start is the hand-off barrier).
  zmq::socket_t zap(context, zmq::socket_type::rep);
  zap.set(zmq::sockopt::linger, 0);
  try {
    zap.bind(kZapEndpoint);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error(
        std::string("publish.curve_clients_dir: cannot start the ZAP handler: ") + e.what());
  }
  spdlog::info("publish: CURVE clients limited to the {} keys in {}", authorised.size(),
               clients_dir);
  zap_thread_ =
      std::jthread([this, zap = std::move(zap),
                    authorised = std::move(authorised)](std::stop_token stop) mutable {
        pthread_setname_np(pthread_self(), "sf-zap");
        int64_t last_log_ns = INT64_MIN / 2;
        while (!stop.stop_requested()) {
          // Errors are logged and the loop goes on: a dead handler would let libzmq admit everyone.
          try {
            zmq::pollitem_t items[] = {{zap.handle(), 0, ZMQ_POLLIN, 0}};
            if (zmq::poll(items, 1, std::chrono::milliseconds(100)) <= 0) continue;
            // RFC 27 request: version, request id, domain, address, identity, mechanism,
            // credentials...
            std::vector<zmq::message_t> frames;
            do {
              frames.emplace_back();
              if (!zap.recv(frames.back())) break;
            } while (frames.back().more());
            const std::string mechanism = frames.size() > 5 ? frames[5].to_string() : "";
            const bool ok = mechanism == "CURVE" && frames.size() > 6 &&
                            authorised.count(frames[6].to_string()) > 0;
            if (!ok) {
              refused_clients_.fetch_add(1, std::memory_order_relaxed);
              if (const int64_t now = core::host_now_ns(); now - last_log_ns >= core::kNsPerS) {
                last_log_ns = now;
                spdlog::warn(
                    "publish: refused a {} client from {} (key not in publish.curve_clients_dir)",
                    mechanism.empty() ? "malformed" : mechanism,
                    frames.size() > 3 ? frames[3].to_string() : std::string("?"));
              }
            }
            // REP must answer every request, even a malformed one.
            zap.send(zmq::str_buffer("1.0"), zmq::send_flags::sndmore);
            zap.send(frames.size() > 1 ? zmq::buffer(frames[1].data(), frames[1].size())
                                       : zmq::const_buffer(),
                     zmq::send_flags::sndmore);
            zap.send(zmq::buffer(std::string(ok ? "200" : "400")), zmq::send_flags::sndmore);
            zap.send(zmq::buffer(std::string(ok ? "OK" : "client key not authorised")),
                     zmq::send_flags::sndmore);
            zap.send(zmq::str_buffer(""), zmq::send_flags::sndmore);
            zap.send(zmq::str_buffer(""), zmq::send_flags::none);
          } catch (const std::exception& e) {
            spdlog::error("publish: ZAP handler: {} (continuing)", e.what());
          }
        }
      });
}
void ZmqPublisher::send(const void* data, size_t size) {
  try {
    auto r1 =
        socket_.send(zmq::buffer(topic_), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    auto r2 = r1 ? socket_.send(zmq::const_buffer(data, size), zmq::send_flags::dontwait) : r1;
    if (r2) {
      ++stats_.sent;
    } else {
      ++stats_.send_failures;
    }
  } catch (const zmq::error_t&) {
    ++stats_.send_failures;
  }
}

void ZmqPublisher::publish(core::Prediction& p) {
  p.timing.publish_ns = core::host_now_ns();
  if (json_) {
    stages::encode_prediction_json(p, text_);
    send(text_.data(), text_.size());
  } else {
    stages::encode_prediction(p, buffer_);
    send(buffer_.data(), buffer_.size());
  }
}

void ZmqPublisher::publish_text(const std::string& topic, const std::string& text) {
  try {
    auto r1 =
        socket_.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    auto r2 = r1 ? socket_.send(zmq::buffer(text), zmq::send_flags::dontwait) : r1;
    if (!r2) ++stats_.send_failures;
  } catch (const zmq::error_t&) {
    ++stats_.send_failures;
  }
}

}  // namespace spikeflow::pipeline
