#include "pipeline/zmq_publisher.h"

#include "core/time.h"
#include "stages/prediction_codec.h"

namespace spikeflow::pipeline {

ZmqPublisher::ZmqPublisher(zmq::context_t& context, const PublishConfig& config)
    : socket_(context, zmq::socket_type::pub), topic_(config.topic), json_(config.format == PublishFormat::kJson) {
  socket_.set(zmq::sockopt::linger, config.linger_ms);
  socket_.set(zmq::sockopt::sndhwm, config.send_high_water_mark);
  try {
    socket_.bind(config.endpoint);
  } catch (const zmq::error_t& e) {
    throw std::runtime_error("publish: cannot bind " + config.endpoint + ": " + e.what());
  }
  endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
}

void ZmqPublisher::send(const void* data, size_t size) {
  try {
    auto r1 = socket_.send(zmq::buffer(topic_), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
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
    auto r1 = socket_.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
    auto r2 = r1 ? socket_.send(zmq::buffer(text), zmq::send_flags::dontwait) : r1;
    if (!r2) ++stats_.send_failures;
  } catch (const zmq::error_t&) {
    ++stats_.send_failures;
  }
}

}  // namespace spikeflow::pipeline
