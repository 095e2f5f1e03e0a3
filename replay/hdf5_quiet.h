// Shared by the NWB reader and writer (replay/, libhdf5's C API): libhdf5 prints its error stack
// to stderr on every failed call by default; our readers and writers report their own one-line
// errors, so printing is off while an instance lives (and restored after).
#pragma once

#include <hdf5.h>

namespace spikeflow::replay {

class SilenceHdf5Errors {
 public:
  SilenceHdf5Errors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~SilenceHdf5Errors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  SilenceHdf5Errors(const SilenceHdf5Errors&) = delete;
  SilenceHdf5Errors& operator=(const SilenceHdf5Errors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

}  // namespace spikeflow::replay
