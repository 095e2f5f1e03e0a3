// Writing NWB-layout HDF5 fixtures for the replay tests straight through libhdf5's C API
// (independent of the reader under test): only the groups, datasets and attributes the reader
// uses, laid out as pynwb writes them (NWB 2.x core schema).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace spikeflow::replay::testing {

/// Creates (truncates) an HDF5 file; each call adds one object, creating missing parent groups.
/// Throws std::runtime_error on any libhdf5 failure.
class H5Builder {
 public:
  explicit H5Builder(const std::string& path)
      : file_(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)),
        lcpl_(H5Pcreate(H5P_LINK_CREATE)) {
    if (file_ < 0 || lcpl_ < 0) throw std::runtime_error("H5Builder: cannot create " + path);
    H5Pset_create_intermediate_group(lcpl_, 1);
  }
  ~H5Builder() {
    H5Pclose(lcpl_);
    H5Fclose(file_);
  }
  H5Builder(const H5Builder&) = delete;
  H5Builder& operator=(const H5Builder&) = delete;

  /// dims empty = one dimension of v.size(); {} with scalar = true = a scalar dataset.
  void doubles(const std::string& path, const std::vector<double>& v,
               std::vector<hsize_t> dims = {}, hid_t file_type = H5T_IEEE_F64LE,
               bool scalar = false) {
    write(path, v.data(), v.size(), dims, file_type, H5T_NATIVE_DOUBLE, scalar);
  }
  void ints(const std::string& path, const std::vector<int64_t>& v, std::vector<hsize_t> dims = {},
            hid_t file_type = H5T_STD_I64LE) {
    write(path, v.data(), v.size(), dims, file_type, H5T_NATIVE_INT64, false);
  }
  void scalar(const std::string& path, double v) { doubles(path, {v}, {}, H5T_IEEE_F64LE, true); }
  void group(const std::string& path) {
    const hid_t g = H5Gcreate2(file_, path.c_str(), lcpl_, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0) throw std::runtime_error("H5Builder: cannot create group " + path);
    H5Gclose(g);
  }
  void attr(const std::string& obj, const std::string& name, double v) {
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate_by_name(file_, obj.c_str(), name.c_str(), H5T_IEEE_F64LE, space,
                                      H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    const herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
    if (a >= 0) H5Aclose(a);
    H5Sclose(space);
    if (rc < 0) throw std::runtime_error("H5Builder: cannot write attribute " + obj + "@" + name);
  }

  /// A variable-length UTF-8 string attribute (NWB's neurodata_type, nwb_version).
  void text_attr(const std::string& obj, const std::string& name, const std::string& v) {
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    H5Tset_cset(type, H5T_CSET_UTF8);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t a = H5Acreate_by_name(file_, obj.c_str(), name.c_str(), type, space, H5P_DEFAULT,
                                      H5P_DEFAULT, H5P_DEFAULT);
    const char* p = v.c_str();
    const herr_t rc = a < 0 ? -1 : H5Awrite(a, type, &p);
    if (a >= 0) H5Aclose(a);
    H5Sclose(space);
    H5Tclose(type);
    if (rc < 0) throw std::runtime_error("H5Builder: cannot write attribute " + obj + "@" + name);
  }
  /// A scalar variable-length string dataset (NWB 1.x kept /nwb_version as one).
  void text(const std::string& path, const std::string& v) {
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, H5T_VARIABLE);
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t ds = H5Dcreate2(file_, path.c_str(), type, space, lcpl_, H5P_DEFAULT, H5P_DEFAULT);
    const char* p = v.c_str();
    const herr_t rc = ds < 0 ? -1 : H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, &p);
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(space);
    H5Tclose(type);
    if (rc < 0) throw std::runtime_error("H5Builder: cannot write dataset " + path);
  }

 private:
  void write(const std::string& path, const void* data, size_t n, std::vector<hsize_t> dims,
             hid_t file_type, hid_t mem_type, bool scalar) {
    if (dims.empty() && !scalar) dims = {static_cast<hsize_t>(n)};
    const hid_t space = scalar
                            ? H5Screate(H5S_SCALAR)
                            : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    const hid_t ds =
        H5Dcreate2(file_, path.c_str(), file_type, space, lcpl_, H5P_DEFAULT, H5P_DEFAULT);
    const herr_t rc =
        ds < 0 ? -1 : (n == 0 ? 0 : H5Dwrite(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data));
    if (ds >= 0) H5Dclose(ds);
    H5Sclose(space);
    if (rc < 0) throw std::runtime_error("H5Builder: cannot write dataset " + path);
  }
  hid_t file_;
  hid_t lcpl_;
};

/// A small NWB file's contents; write_nwb lays it out. Optional parts are left out when empty.
struct NwbFixture {
  std::vector<int64_t> ids{0, 1, 2, 3};
  std::vector<std::vector<double>> spikes_s{{0.1, 0.25, 1.5}, {0.2}, {}, {0.05, 0.75}};
  std::optional<std::vector<int64_t>> index_override;  ///< else the exclusive end offsets
  bool spike_times_2d = false;                         ///< write spike_times as (N x 1)
  std::optional<std::vector<int64_t>> electrodes = std::vector<int64_t>{4, 4, 7, 9};
  std::optional<std::vector<int64_t>> electrodes_index;  ///< ragged region
  int64_t electrode_table_rows = 10;                     ///< < 0: no electrodes table

  std::string behavior_group = "/processing/behavior/Velocity/hand_vel";  ///< empty: none
  std::vector<double> behavior{0, 0, 10, -10, 20, -20, 30, -30, 40, -40};
  std::vector<hsize_t> behavior_dims{5, 2};
  hid_t behavior_type = H5T_IEEE_F64LE;
  std::optional<std::vector<double>> timestamps = std::vector<double>{0.0, 0.5, 1.0, 1.5, 2.0};
  std::optional<double> starting_time;
  std::optional<double> rate;
  std::optional<double> conversion = 0.1;
  std::optional<double> offset = 1.0;

  bool trials = true;
  std::vector<double> trial_start{0.0, 1.0};
  std::vector<double> trial_stop{0.9, 2.0};
  std::optional<std::vector<double>> condition = std::vector<double>{3.0, 5.0};
  std::string condition_column = "target_id";
};

inline void write_nwb(const std::string& path, const NwbFixture& f) {
  H5Builder b(path);
  std::vector<double> flat;
  std::vector<int64_t> index;
  for (const auto& u : f.spikes_s) {
    flat.insert(flat.end(), u.begin(), u.end());
    index.push_back(static_cast<int64_t>(flat.size()));
  }
  b.ints("/units/id", f.ids);
  if (f.spike_times_2d) {
    b.doubles("/units/spike_times", flat, {flat.size(), 1});
  } else {
    b.doubles("/units/spike_times", flat);
  }
  b.ints("/units/spike_times_index", f.index_override.value_or(index), {}, H5T_STD_U32LE);
  if (f.electrodes) b.ints("/units/electrodes", *f.electrodes);
  if (f.electrodes_index) b.ints("/units/electrodes_index", *f.electrodes_index);
  if (f.electrode_table_rows >= 0) {
    std::vector<int64_t> rows(static_cast<size_t>(f.electrode_table_rows));
    for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int64_t>(i);
    b.ints("/general/extracellular_ephys/electrodes/id", rows);
  }
  if (!f.behavior_group.empty()) {
    const std::string data = f.behavior_group + "/data";
    b.doubles(data, f.behavior, f.behavior_dims, f.behavior_type);
    if (f.conversion) b.attr(data, "conversion", *f.conversion);
    if (f.offset) b.attr(data, "offset", *f.offset);
    if (f.timestamps) b.doubles(f.behavior_group + "/timestamps", *f.timestamps);
    if (f.starting_time) {
      b.scalar(f.behavior_group + "/starting_time", *f.starting_time);
      if (f.rate) b.attr(f.behavior_group + "/starting_time", "rate", *f.rate);
    }
  }
  if (f.trials) {
    b.doubles("/intervals/trials/start_time", f.trial_start);
    b.doubles("/intervals/trials/stop_time", f.trial_stop);
    if (f.condition) b.doubles("/intervals/trials/" + f.condition_column, *f.condition);
  }
}

}  // namespace spikeflow::replay::testing
