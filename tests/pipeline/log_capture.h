// LogCapture: while alive, spdlog's default logger also writes to an in-memory ring, so a test
// can check that a condition was logged. Create it before the threads that log start and destroy
// it after they stopped (swapping the default logger is not safe while another thread logs).
#pragma once

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace spikeflow::testing {

class LogCapture {
 public:
  LogCapture()
      : previous_(spdlog::default_logger()),
        ring_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256)) {
    std::vector<spdlog::sink_ptr> sinks = previous_->sinks();
    sinks.push_back(ring_);
    auto logger = std::make_shared<spdlog::logger>("capture", sinks.begin(), sinks.end());
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(std::move(logger));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  /// Lines logged so far that contain `text`.
  std::vector<std::string> lines_with(const std::string& text) const {
    std::vector<std::string> out;
    for (auto& line : ring_->last_formatted()) {
      if (line.find(text) != std::string::npos) out.push_back(line);
    }
    return out;
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> ring_;
};

}  // namespace spikeflow::testing
