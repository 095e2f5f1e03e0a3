#include "replay/mat_session_reader.h"

#include <matio.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <numbers>
#include <random>
#include <sstream>
#include <stdexcept>

#include "core/file_check.h"
#include "core/time.h"

namespace spikeflow::replay {
namespace {

constexpr size_t kMaxProblemsListed = 50;

struct MatCloser {
  void operator()(mat_t* m) const { Mat_Close(m); }
};
struct VarFreer {
  void operator()(matvar_t* v) const { Mat_VarFree(v); }
};
using MatPtr = std::unique_ptr<mat_t, MatCloser>;
using VarPtr = std::unique_ptr<matvar_t, VarFreer>;

const char* class_name(matio_classes c) {
  switch (c) {
    case MAT_C_CELL:
      return "cell array";
    case MAT_C_STRUCT:
      return "struct";
    case MAT_C_OBJECT:
      return "object";
    case MAT_C_CHAR:
      return "char array";
    case MAT_C_SPARSE:
      return "sparse matrix";
    case MAT_C_DOUBLE:
      return "double";
    case MAT_C_SINGLE:
      return "single";
    case MAT_C_INT8:
      return "int8";
    case MAT_C_UINT8:
      return "uint8";
    case MAT_C_INT16:
      return "int16";
    case MAT_C_UINT16:
      return "uint16";
    case MAT_C_INT32:
      return "int32";
    case MAT_C_UINT32:
      return "uint32";
    case MAT_C_INT64:
      return "int64";
    case MAT_C_UINT64:
      return "uint64";
    case MAT_C_FUNCTION:
      return "function handle";
    case MAT_C_OPAQUE:
      return "opaque";
    default:
      return "empty/unknown";
  }
}

size_t numel(const matvar_t* v) {
  size_t n = 1;
  for (int i = 0; i < v->rank; ++i) n *= v->dims[i];
  return n;
}

/// A real numeric 2-D matrix converted to double, column-major as MATLAB stores it.
struct Matrix {
  size_t rows = 0;
  size_t cols = 0;
  std::vector<double> v;
  double at(size_t r, size_t c) const { return v[r + c * rows]; }
};

template <typename T>
void convert(const void* data, size_t n, std::vector<double>& out) {
  const T* p = static_cast<const T*>(data);
  out.resize(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<double>(p[i]);
}

/// Empty string on success; otherwise why the field is not a real numeric matrix.
std::string to_matrix(const matvar_t* f, Matrix& m) {
  if (f == nullptr) return "is missing";
  if (f->isComplex) return "is complex, expected real numbers";
  for (int i = 2; i < f->rank; ++i) {
    if (f->dims[i] != 1) return "has " + std::to_string(f->rank) + " dimensions, expected 2";
  }
  m.rows = f->rank >= 1 ? f->dims[0] : 0;
  m.cols = f->rank >= 2 ? f->dims[1] : 1;
  const size_t n = numel(f);
  if (n > 0 && f->data == nullptr) return "has no data";
  switch (f->class_type) {
    case MAT_C_DOUBLE:
      convert<double>(f->data, n, m.v);
      break;
    case MAT_C_SINGLE:
      convert<float>(f->data, n, m.v);
      break;
    case MAT_C_INT8:
      convert<int8_t>(f->data, n, m.v);
      break;
    case MAT_C_UINT8:
      convert<uint8_t>(f->data, n, m.v);
      break;
    case MAT_C_INT16:
      convert<int16_t>(f->data, n, m.v);
      break;
    case MAT_C_UINT16:
      convert<uint16_t>(f->data, n, m.v);
      break;
    case MAT_C_INT32:
      convert<int32_t>(f->data, n, m.v);
      break;
    case MAT_C_UINT32:
      convert<uint32_t>(f->data, n, m.v);
      break;
    case MAT_C_INT64:
      convert<int64_t>(f->data, n, m.v);
      break;
    case MAT_C_UINT64:
      convert<uint64_t>(f->data, n, m.v);
      break;
    default:
      return std::string("is a ") + class_name(f->class_type) + ", expected a numeric matrix";
  }
  return {};
}

std::string dims_str(const Matrix& m) {
  return std::to_string(m.rows) + "x" + std::to_string(m.cols);
}

void check_options(const MatReadOptions& opts) {
  std::vector<std::string> bad;
  if (opts.behavior_names.empty()) bad.push_back("behavior_names is empty");
  if (opts.num_conditions < 1) bad.push_back("num_conditions must be >= 1");
  if (opts.variable.empty()) bad.push_back("variable name is empty");
  if (!bad.empty()) {
    std::string msg = "read_mat_session: invalid options:";
    for (const auto& b : bad) msg += "\n  - " + b;
    throw std::invalid_argument(msg);
  }
}

/// The variable holding the trials: a non-empty struct array. Throws naming the file (and the
/// variables it does have, when the one asked for is missing).
VarPtr read_trial_variable(mat_t* mat, const std::string& file, const std::string& variable) {
  VarPtr var(Mat_VarRead(mat, variable.c_str()));
  if (!var) {
    size_t n = 0;
    char** names = Mat_GetDir(mat, &n);
    std::string have;
    for (size_t i = 0; names != nullptr && i < n; ++i) {
      if (names[i]) have += (have.empty() ? "" : ", ") + std::string(names[i]);
    }
    throw std::runtime_error(file + ": variable '" + variable +
                             "' not found (variables: " + (have.empty() ? "none" : have) + ")");
  }
  const std::string vname = "variable '" + variable + "'";
  if (var->class_type != MAT_C_STRUCT) {
    throw std::runtime_error(file + ": " + vname + " is a " + class_name(var->class_type) +
                             ", expected a struct array (one element per trial)");
  }
  if (numel(var.get()) == 0)
    throw std::runtime_error(file + ": " + vname + " is an empty struct array");
  return var;
}

/// The trial struct array being read, and every problem found in it so far: they are all
/// reported together at the end.
class TrialStruct {
 public:
  TrialStruct(matvar_t* var, std::string vname) : var_(var), vname_(std::move(vname)) {}

  size_t num_trials() const { return numel(var_); }
  const std::string& name() const { return vname_; }

  bool has_field(const std::string& name) const {
    const unsigned nf = Mat_VarGetNumberOfFields(var_);
    char* const* fnames = Mat_VarGetStructFieldnames(var_);
    for (unsigned i = 0; i < nf; ++i) {
      if (fnames && fnames[i] && name == fnames[i]) return true;
    }
    return false;
  }

  /// Field `name` of trial k (0-based) as a matrix; false (and the problem recorded) when it is
  /// not a real numeric matrix.
  bool field(const std::string& name, size_t k, Matrix& m) {
    const std::string err = to_matrix(Mat_VarGetStructFieldByName(var_, name.c_str(), k), m);
    if (!err.empty()) {
      problem(where(k, name) + " " + err);
      return false;
    }
    return true;
  }

  /// "variable 'x'(k+1).name", MATLAB's 1-based indexing.
  std::string where(size_t k, const std::string& name) const {
    return vname_ + "(" + std::to_string(k + 1) + ")." + name;
  }

  void problem(std::string p) { problems_.push_back(std::move(p)); }
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  matvar_t* var_;
  std::string vname_;
  std::vector<std::string> problems_;
};

/// Throws listing every required field the struct array lacks.
void require_fields(const TrialStruct& trials, const std::string& file,
                    const MatReadOptions& opts) {
  std::vector<std::string> missing;
  for (const std::string* f :
       {&opts.spikes_field, &opts.unit_guide_field, &opts.velocity_field, &opts.bin_size_field}) {
    if (!trials.has_field(*f))
      missing.push_back("field '" + *f + "' missing from " + trials.name());
  }
  if (!missing.empty()) {
    std::string msg = file + ":";
    for (const auto& m : missing) msg += "\n  - " + m;
    throw std::runtime_error(msg);
  }
}

/// What the first trial sets and every other trial must agree with.
struct TrialReference {
  Matrix guide;                      ///< trial 1's unit guide as stored
  std::vector<core::UnitKey> units;  ///< ... as (channel, unit code) pairs
  double bin_s = 0.0;                ///< trial 1's bin size; 0 when invalid
};

TrialReference read_reference(TrialStruct& trials, const MatReadOptions& opts) {
  TrialReference ref;
  Matrix& guide = ref.guide;
  if (trials.field(opts.unit_guide_field, 0, guide)) {
    if (guide.cols != 2 || guide.rows == 0) {
      trials.problem(trials.where(0, opts.unit_guide_field) + " is " + dims_str(guide) +
                     ", expected U x 2 [electrode, sort code]");
    } else {
      for (size_t u = 0; u < guide.rows; ++u) {
        const double ch = guide.at(u, 0);
        const double code = guide.at(u, 1);
        if (!(ch >= 0 && ch <= 4294967295.0 && ch == std::floor(ch)) ||
            !(code >= 0 && code <= 65535.0 && code == std::floor(code))) {
          trials.problem(trials.where(0, opts.unit_guide_field) + " row " + std::to_string(u + 1) +
                         " is not a valid [electrode, sort code] pair of non-negative integers");
          continue;
        }
        ref.units.push_back({static_cast<uint32_t>(ch), static_cast<uint16_t>(code)});
      }
    }
  }
  Matrix bin;
  if (trials.field(opts.bin_size_field, 0, bin)) {
    if (bin.v.size() != 1 || !std::isfinite(bin.v[0]) || bin.v[0] <= 0) {
      trials.problem(trials.where(0, opts.bin_size_field) +
                     " must be one positive number (seconds)");
    } else {
      ref.bin_s = bin.v[0];
    }
  }
  return ref;
}

/// One trial's binned data once checked.
struct TrialData {
  Matrix spikes;  ///< T x U spike counts
  Matrix vel;     ///< T x D behaviour
  size_t bins = 0;
  int32_t condition = 0;
};

/// The condition index of trial k: its angle (rad) rounded to one of num_conditions directions;
/// -1 for a non-finite angle (unknown target), 0 when the field is bad (problem recorded).
int32_t read_condition(TrialStruct& trials, size_t k, const MatReadOptions& opts) {
  Matrix c;
  if (!trials.field(opts.condition_field, k, c)) return 0;
  if (c.v.size() != 1) {
    trials.problem(trials.where(k, opts.condition_field) + " must be a scalar angle (rad)");
    return 0;
  }
  if (!std::isfinite(c.v[0])) return -1;
  const double step = 2.0 * std::numbers::pi / opts.num_conditions;
  const int64_t idx = std::llround(c.v[0] / step) % opts.num_conditions;
  return static_cast<int32_t>((idx + opts.num_conditions) % opts.num_conditions);
}

/// Reads trial k and checks it against the reference and itself, recording every problem.
TrialData read_trial(TrialStruct& trials, size_t k, const MatReadOptions& opts,
                     const TrialReference& ref, bool has_condition) {
  TrialData t;
  Matrix& spikes = t.spikes;
  Matrix& vel = t.vel;
  const size_t num_units = ref.units.size();
  const size_t dim = opts.behavior_names.size();
  const bool ok_spikes = trials.field(opts.spikes_field, k, spikes);
  const bool ok_vel = trials.field(opts.velocity_field, k, vel);
  Matrix g;
  Matrix b;
  if (k > 0 && trials.field(opts.unit_guide_field, k, g) && g.v != ref.guide.v) {
    trials.problem(trials.where(k, opts.unit_guide_field) + " differs from trial 1's");
  }
  if (k > 0 && trials.field(opts.bin_size_field, k, b) &&
      (b.v.size() != 1 || !(std::abs(b.v[0] - ref.bin_s) <= 1e-9 * ref.bin_s))) {
    trials.problem(trials.where(k, opts.bin_size_field) + " differs from trial 1's (" +
                   std::to_string(ref.bin_s) + " s)");
  }
  t.bins = ok_spikes ? spikes.rows : 0;
  if (ok_spikes && spikes.cols != num_units && num_units != 0) {
    trials.problem(trials.where(k, opts.spikes_field) + " has " + std::to_string(spikes.cols) +
                   " columns but the unit guide lists " + std::to_string(num_units) +
                   " units (unit count mismatch)");
  }
  if (ok_spikes && t.bins == 0) trials.problem(trials.where(k, opts.spikes_field) + " has no bins");
  if (ok_vel && vel.cols != dim) {
    trials.problem(trials.where(k, opts.velocity_field) + " has " + std::to_string(vel.cols) +
                   " columns, expected " + std::to_string(dim) + " (behavior_names)");
  }
  if (ok_spikes && ok_vel && vel.rows != t.bins) {
    trials.problem(trials.where(k, opts.velocity_field) + " has " + std::to_string(vel.rows) +
                   " rows but " + opts.spikes_field + " has " + std::to_string(t.bins) +
                   " (mismatched T)");
  }
  if (ok_vel) {
    size_t nan = 0;
    size_t first = 0;
    for (size_t i = 0; i < vel.v.size(); ++i) {
      if (!std::isfinite(vel.v[i]) && nan++ == 0) first = i;
    }
    if (nan > 0) {
      trials.problem(trials.where(k, opts.velocity_field) + " has " + std::to_string(nan) +
                     " NaN/inf values (first at bin " +
                     std::to_string(vel.rows ? first % vel.rows + 1 : 0) + ")");
    }
  }
  if (ok_spikes) {
    size_t bad = 0;
    for (double c : spikes.v) {
      if (!(c >= 0 && c == std::floor(c) && c < 1e6)) ++bad;
    }
    if (bad > 0) {
      trials.problem(trials.where(k, opts.spikes_field) + " has " + std::to_string(bad) +
                     " entries that are not non-negative integer counts");
    }
  }
  if (has_condition) t.condition = read_condition(trials, k, opts);
  return t;
}

/// Appends a checked trial starting at bin `bin0` of the concatenated clock: counts expand into
/// spike times drawn uniformly in their bin (sorted, so each unit stays ascending), behaviour
/// samples sit at bin centres.
void append_trial(const TrialData& t, int64_t bin0, int64_t bin_ns, std::mt19937_64& rng,
                  Session& s) {
  std::vector<int64_t> draws;
  const size_t dim = s.behavior_names.size();
  for (size_t b = 0; b < t.bins; ++b) {
    const int64_t start = (bin0 + static_cast<int64_t>(b)) * bin_ns;
    for (size_t u = 0; u < s.units.size(); ++u) {
      const auto c = static_cast<size_t>(t.spikes.at(b, u));
      if (c == 0) continue;
      draws.resize(c);
      for (auto& d : draws) d = start + static_cast<int64_t>(rng() % static_cast<uint64_t>(bin_ns));
      std::sort(draws.begin(), draws.end());
      auto& dst = s.spike_times_ns[u];
      dst.insert(dst.end(), draws.begin(), draws.end());
    }
    s.behavior_t_ns.push_back(start + bin_ns / 2);
    for (size_t d = 0; d < dim; ++d) s.behavior.push_back(static_cast<float>(t.vel.at(b, d)));
  }
  s.trials.push_back({bin0 * bin_ns, (bin0 + static_cast<int64_t>(t.bins)) * bin_ns, t.condition});
}

[[noreturn]] void throw_problems(const std::string& file, const TrialStruct& trials) {
  const auto& problems = trials.problems();
  std::ostringstream msg;
  msg << file << ": cannot read " << trials.name() << " (" << problems.size() << " problem"
      << (problems.size() == 1 ? "" : "s") << "):";
  for (size_t i = 0; i < problems.size() && i < kMaxProblemsListed; ++i) {
    msg << "\n  - " << problems[i];
  }
  if (problems.size() > kMaxProblemsListed) {
    msg << "\n  ... and " << problems.size() - kMaxProblemsListed << " more";
  }
  throw std::runtime_error(msg.str());
}

Session read_mat_file(const std::string& path, const MatReadOptions& opts) {
  const std::string file = path + ": MAT file";
  MatPtr mat(Mat_Open(path.c_str(), MAT_ACC_RDONLY));
  if (!mat)
    throw std::runtime_error(file + ": cannot open (missing, or not a MAT v4/v5/v7.3 file)");
  check_options(opts);

  const VarPtr var = read_trial_variable(mat.get(), file, opts.variable);
  TrialStruct trials(var.get(), "variable '" + opts.variable + "'");
  require_fields(trials, file, opts);
  const bool has_condition =
      !opts.condition_field.empty() && trials.has_field(opts.condition_field);

  // Units and bin size from the first trial; every trial must agree.
  const TrialReference ref = read_reference(trials, opts);
  const int64_t bin_ns = std::llround(ref.bin_s * 1e9);
  if (ref.bin_s > 0 && bin_ns <= 0) trials.problem(trials.name() + ": bin size below 1 ns");

  Session s;
  s.units = ref.units;
  s.spike_times_ns.resize(ref.units.size());
  s.behavior_names = opts.behavior_names;
  std::mt19937_64 rng(opts.expansion_seed);
  int64_t bin0 = 0;  // first bin of the current trial on the concatenated clock
  for (size_t k = 0; k < trials.num_trials(); ++k) {
    const TrialData t = read_trial(trials, k, opts, ref, has_condition);
    if (!trials.problems().empty()) continue;  // keep checking the rest; build nothing more
    append_trial(t, bin0, bin_ns, rng, s);
    bin0 += static_cast<int64_t>(t.bins);
  }
  if (!trials.problems().empty()) throw_problems(file, trials);

  s.start_ns = 0;
  s.end_ns = bin0 * bin_ns;
  s.validate(file);
  return s;
}

}  // namespace

Session read_mat_session(const std::string& path, const MatReadOptions& opts) {
  core::check_input_file(path, "MAT file");
  // HDF5 without MATLAB's text header is not a MAT file (a v7.3 one has it in its 512-byte user
  // block); libmatio would only say it cannot open it, and the NWB reader would complain about
  // NWB groups.
  const core::FileFormat is = core::sniff_file(path);
  if (is == core::FileFormat::kHdf5) {
    throw core::InputFileError(path +
                               ": is an HDF5 file without MATLAB's header, so not a MAT file "
                               "(an NWB file? name it .nwb)");
  }
  if (is != core::FileFormat::kUnknown && is != core::FileFormat::kMatV5 &&
      is != core::FileFormat::kMatV73) {
    throw core::InputFileError(path + ": is " + std::string(core::describe(is)) +
                               ", not a MAT file");
  }
  return core::as_input_file_error([&] { return read_mat_file(path, opts); });
}

}  // namespace spikeflow::replay
