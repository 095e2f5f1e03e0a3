// Read access to one NWB 2.x (HDF5) file for the NWB session reader (replay/nwb_session_reader.*):
// typed, shape-checked reads of datasets and attributes whose every failure throws
// "<file>: <h5 path>: <problem>", and a bounded walk of a group's links. Internal to replay/
// (not installed: it includes <hdf5.h>). Thread contract: libhdf5 (Debian's serial build) is not
// thread-safe; one HDF5 user per process at a time.
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace spikeflow::replay {

/// Owns one HDF5 identifier and closes it with the matching H5?close.
class Hid {
 public:
  using Closer = herr_t (*)(hid_t);
  Hid() = default;
  Hid(hid_t id, Closer close) : id_(id), close_(close) {}
  ~Hid() { reset(); }
  Hid(Hid&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), close_(o.close_) {}
  Hid& operator=(Hid&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      close_ = o.close_;
    }
    return *this;
  }
  Hid(const Hid&) = delete;
  Hid& operator=(const Hid&) = delete;
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = H5I_INVALID_HID;
  }
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

/// One open NWB file plus its name, for messages of the form "<file>: <h5 path>: <problem>".
class NwbFile {
 public:
  /// Opens read-only; throws naming the file when it is missing, not HDF5, or another format
  /// (a v7.3 MAT file is HDF5 too, but MATLAB's layout).
  explicit NwbFile(std::string path);

  [[noreturn]] void fail(const std::string& h5path, const std::string& msg) const;

  /// True when every component of the absolute path exists (H5Lexists needs the parents to).
  bool exists(const std::string& h5path) const;
  bool is_group(const std::string& h5path) const;
  Hid open_dataset(const std::string& h5path) const;
  std::vector<hsize_t> shape(const Hid& ds, const std::string& h5path) const;

  /// A numeric dataset of rank `rank` (0 = scalar), converted by libhdf5; its extent is checked
  /// against the bytes stored before anything is allocated (a corrupt file can declare any).
  std::vector<double> read_doubles(const std::string& h5path, int rank,
                                   std::vector<hsize_t>* dims = nullptr) const;
  /// As read_doubles, for integer datasets only.
  std::vector<int64_t> read_ints(const std::string& h5path, int rank,
                                 std::vector<hsize_t>* dims = nullptr) const;
  /// Scalar (or one-element) numeric dataset.
  double read_scalar(const std::string& h5path) const;

  /// Numeric scalar attribute `name` of the object at h5path, or `fallback` when absent.
  double attribute(const std::string& h5path, const char* name, double fallback,
                   bool required = false) const;
  /// Text attribute `name` of the object at h5path, or "" when absent or not text.
  std::string text_attribute(const std::string& h5path, const char* name) const;
  /// Text of a scalar string dataset at h5path, or "" when it is not one.
  std::string text_dataset(const std::string& h5path) const;

  /// Absolute paths of every group named `name` below `root`, and of every group holding a
  /// `data` dataset (the TimeSeries there, for the error message when `name` is not found).
  void find_groups(const std::string& root, const std::string& name,
                   std::vector<std::string>& matches, std::vector<std::string>& series) const;

  static std::string shape_text(const std::vector<hsize_t>& dims);
  const std::string& path() const { return path_; }

 private:
  template <typename T>
  std::vector<T> read(const std::string& h5path, int rank, std::vector<hsize_t>* dims_out,
                      hid_t mem_type, bool integers_only) const;
  void list_links(hid_t group, const std::string& root, const std::string& prefix, int depth,
                  std::vector<std::string>& out) const;
  static std::string read_text(hid_t obj, hid_t type, bool is_attr);

  std::string path_;
  Hid file_;
};

}  // namespace spikeflow::replay
