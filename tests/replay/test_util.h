// Helpers shared by the replay tests: a tiny TrialData MAT writer / counts reader built directly
// on libmatio (independent of the reader under test). TempDir comes from tests/common.
#pragma once

#include <matio.h>

#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "replay/session.h"
#include "tests/common/test_support.h"

namespace spikeflow::replay::testing {

/// The shared temporary directory (tests/common), under the name these tests have always used.
using spikeflow::testing::TempDir;

/// One TrialData element; matrices column-major as MATLAB stores them.
struct MatTrial {
  size_t bins = 0;             ///< T
  size_t units = 0;            ///< U (columns of spikes)
  std::vector<double> spikes;  ///< T x U counts
  std::vector<double> guide;   ///< U x 2 [electrode, sort]
  size_t guide_rows = 0;
  std::vector<double> vel;  ///< vel_rows x 2
  size_t vel_rows = 0;
  double bin_size = 0.05;
  std::optional<double> target_direction;
};

/// Writes `trials` as a 1 x N struct array named `variable`. Throws on any matio failure.
inline void write_trial_mat(const std::string& path, mat_ft version, const std::string& variable,
                            const std::vector<MatTrial>& trials) {
  mat_t* mat = Mat_CreateVer(path.c_str(), nullptr, version);
  if (!mat) throw std::runtime_error("Mat_CreateVer failed for " + path);
  std::vector<const char*> fields{"M1_spikes", "M1_unit_guide", "vel", "bin_size"};
  const bool with_dir = !trials.empty() && trials[0].target_direction.has_value();
  if (with_dir) fields.push_back("target_direction");
  size_t dims[2] = {1, trials.size()};
  fields.push_back(nullptr);  // Mat_VarCreateStruct2 takes a null-terminated list
  matvar_t* st = Mat_VarCreateStruct2(variable.c_str(), 2, dims, fields.data());
  auto make = [](const char* name, size_t r, size_t c, const double* data) {
    size_t d[2] = {r, c};
    return Mat_VarCreate(name, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d, const_cast<double*>(data), 0);
  };
  for (size_t k = 0; k < trials.size(); ++k) {
    const MatTrial& t = trials[k];
    Mat_VarSetStructFieldByName(st, "M1_spikes", k,
                                make("M1_spikes", t.bins, t.units, t.spikes.data()));
    Mat_VarSetStructFieldByName(st, "M1_unit_guide", k,
                                make("M1_unit_guide", t.guide_rows, 2, t.guide.data()));
    Mat_VarSetStructFieldByName(st, "vel", k, make("vel", t.vel_rows, 2, t.vel.data()));
    Mat_VarSetStructFieldByName(st, "bin_size", k, make("bin_size", 1, 1, &t.bin_size));
    if (with_dir) {
      const double dir = t.target_direction.value_or(0.0);
      Mat_VarSetStructFieldByName(st, "target_direction", k, make("target_direction", 1, 1, &dir));
    }
  }
  const int rc =
      Mat_VarWrite(mat, st, version == MAT_FT_MAT73 ? MAT_COMPRESSION_NONE : MAT_COMPRESSION_ZLIB);
  Mat_VarFree(st);
  Mat_Close(mat);
  if (rc != 0) throw std::runtime_error("Mat_VarWrite failed for " + path);
}

/// Concatenated counts of a TrialData file: counts[bin][unit], read straight through matio.
inline std::vector<std::vector<int>> read_concatenated_counts(const std::string& path,
                                                              const std::string& variable,
                                                              const std::string& field) {
  mat_t* mat = Mat_Open(path.c_str(), MAT_ACC_RDONLY);
  if (!mat) throw std::runtime_error("cannot open " + path);
  matvar_t* st = Mat_VarRead(mat, variable.c_str());
  if (!st) {
    Mat_Close(mat);
    throw std::runtime_error("no variable " + variable);
  }
  std::vector<std::vector<int>> counts;
  const size_t n = st->dims[0] * st->dims[1];
  for (size_t k = 0; k < n; ++k) {
    matvar_t* f = Mat_VarGetStructFieldByName(st, field.c_str(), k);
    const auto* d = static_cast<const double*>(f->data);
    const size_t rows = f->dims[0];
    const size_t cols = f->dims[1];
    for (size_t r = 0; r < rows; ++r) {
      std::vector<int> row(cols);
      for (size_t c = 0; c < cols; ++c) row[c] = static_cast<int>(d[r + c * rows]);
      counts.push_back(std::move(row));
    }
  }
  Mat_VarFree(st);
  Mat_Close(mat);
  return counts;
}

/// A small 3-trial TrialData set with known values: 3 units, T = 4, 6, 5 bins, 50 ms.
inline std::vector<MatTrial> small_trials() {
  std::vector<MatTrial> out;
  const size_t lens[3] = {4, 6, 5};
  for (size_t k = 0; k < 3; ++k) {
    MatTrial t;
    t.bins = lens[k];
    t.units = 3;
    t.guide_rows = 3;
    // electrodes column then sort codes column: units (1,1), (1,2), (7,1)
    t.guide = {1, 1, 7, 1, 2, 1};
    t.spikes.resize(t.bins * t.units);
    for (size_t b = 0; b < t.bins; ++b) {
      for (size_t u = 0; u < t.units; ++u)
        t.spikes[b + u * t.bins] = static_cast<double>((b * 3 + u + k) % 5);
    }
    t.vel_rows = t.bins;
    t.vel.resize(t.bins * 2);
    for (size_t b = 0; b < t.bins; ++b) {
      t.vel[b] = static_cast<double>(k * 100 + b);            // vx
      t.vel[b + t.bins] = -static_cast<double>(k * 100 + b);  // vy
    }
    t.target_direction = static_cast<double>(k) * 3.14159265358979 / 4.0 * 3.0;  // 0, 3, 6 (x pi/4)
    out.push_back(std::move(t));
  }
  return out;
}

/// The shared real recording: $SPIKEFLOW_SHARED_DATA if set, else the compile-time directory.
inline std::string shared_mat_path() {
  const char* env = std::getenv("SPIKEFLOW_SHARED_DATA");
  const std::string dir = (env && *env) ? env : SPIKEFLOW_SHARED_DATA_DIR;
  return dir + "/center_out_data.mat";
}

}  // namespace spikeflow::replay::testing
