// TrainingRun's resume file: weights, the best epoch's weights, AdamW moments, the weights' EMA
// (when on), the RNG and the early-stopping state after every epoch, so that an interrupted run
// resumed from it ends bit-identical to an uninterrupted one.
#include <sstream>
#include <stdexcept>

#include "models/checkpoint_file.h"
#include "models/training_run.h"

namespace spikeflow::models::detail {

using torch::Tensor;

namespace {

std::string rng_state(const std::mt19937_64& rng) {
  std::ostringstream os;
  os << rng;
  return os.str();
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

}  // namespace

void TrainingRun::save_resume(const std::string& path, int epoch, bool finished) {
  CheckpointFile ck;
  ck.kind = "possm-resume";
  ck.set_int("epoch", finished ? opts_.max_epochs : epoch);
  ck.set_double("step", step_);
  ck.set_double("best_r2", best_r2_);
  ck.set_int("since_best", since_best_);
  ck.set_int("best_epoch", result_.best_epoch);
  ck.set_int("epochs_run", result_.epochs_run);
  ck.set_string("rng", rng_state(rng_));
  std::vector<float> bs(best_session_r2_.begin(), best_session_r2_.end());
  std::vector<float> bd(result_.best_val_r2_per_dim.begin(), result_.best_val_r2_per_dim.end());
  ck.set_floats("best_session_r2", bs);
  ck.set_floats("best_dims_r2", bd);
  torch::serialize::OutputArchive ar, model_ar, best_ar, optim_ar;
  {
    torch::NoGradGuard g;
    size_t i = 0;
    for (const auto& p : model_->named_parameters(true)) {
      model_ar.write(p.key(), p.value().detach());
      best_ar.write(p.key(), best_.tensors[i++]);
    }
    for (const auto& b : model_->named_buffers(true)) {
      model_ar.write(b.key(), b.value(), true);
      best_ar.write(b.key(), best_.tensors[i++], true);
    }
  }
  optimizer_.save(optim_ar);
  ar.write("model", model_ar);
  ar.write("best", best_ar);
  ar.write("optim", optim_ar);
  if (!ema_.empty()) {
    torch::serialize::OutputArchive ema_ar;
    for (size_t i = 0; i < ema_.size(); ++i) ema_ar.write(std::to_string(i), ema_[i]);
    ar.write("ema", ema_ar);
  }
  std::ostringstream os;
  ar.save_to(os);
  ck.payload = os.str();
  ck.write(path);
}

int TrainingRun::load_resume(const std::string& path) {
  CheckpointFile ck = CheckpointFile::read(path);
  if (ck.kind != "possm-resume")
    throw std::runtime_error("resume file '" + path + "' is a '" + ck.kind + "' file");
  try {
    step_ = ck.get_double("step");
    best_r2_ = ck.get_double("best_r2");
    since_best_ = static_cast<int>(ck.get_int("since_best"));
    result_.best_epoch = static_cast<int>(ck.get_int("best_epoch"));
    result_.epochs_run = static_cast<int>(ck.get_int("epochs_run"));
    std::istringstream is(ck.get_string("rng"));
    is >> rng_;
    for (float v : ck.get_floats("best_session_r2")) best_session_r2_.push_back(v);
    for (float v : ck.get_floats("best_dims_r2")) result_.best_val_r2_per_dim.push_back(v);
    result_.best_val_r2 = best_r2_;
    torch::serialize::InputArchive ar, model_ar, best_ar, optim_ar;
    ar.load_from(ck.payload.data(), ck.payload.size());
    ar.read("model", model_ar);
    ar.read("best", best_ar);
    ar.read("optim", optim_ar);
    torch::NoGradGuard g;
    best_.tensors.clear();
    for (auto& p : model_->named_parameters(true)) {
      Tensor t, b;
      model_ar.read(p.key(), t);
      best_ar.read(p.key(), b);
      if (t.sizes() != p.value().sizes())
        throw std::runtime_error("tensor '" + p.key() + "' does not fit this model");
      p.value().copy_(t);
      best_.tensors.push_back(b);
    }
    for (auto& bu : model_->named_buffers(true)) {
      Tensor t, b;
      model_ar.read(bu.key(), t, true);
      best_ar.read(bu.key(), b, true);
      bu.value().copy_(t);
      best_.tensors.push_back(b);
    }
    optimizer_.load(optim_ar);
    if (!ema_.empty()) {
      torch::serialize::InputArchive ema_ar;
      if (!ar.try_read("ema", ema_ar))
        throw std::runtime_error("it was written without --ema; resume with the same settings");
      for (size_t i = 0; i < ema_.size(); ++i) {
        Tensor t;
        ema_ar.read(std::to_string(i), t);
        ema_[i].copy_(t);
      }
    }
    have_best_ = true;
    return static_cast<int>(ck.get_int("epoch"));
  } catch (const std::exception& e) {
    throw std::runtime_error("resume file '" + path + "': " + first_line(e.what()) +
                             " (delete it to start over)");
  }
}

}  // namespace spikeflow::models::detail
