// NwbFile (replay/nwb_file.h): libhdf5 C API reads with checked shapes, types and extents.
#include "replay/nwb_file.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "core/file_check.h"

namespace spikeflow::replay {

NwbFile::NwbFile(std::string path) : path_(std::move(path)) {
  core::check_input_file(path_, "NWB file");
  const core::FileFormat is = core::sniff_file(path_);
  if (is != core::FileFormat::kHdf5 && is != core::FileFormat::kUnknown) {
    // A v7.3 MAT file is HDF5 too, but its layout is MATLAB's, not NWB's.
    throw std::runtime_error(path_ + ": is " + std::string(core::describe(is)) +
                             ", not an NWB file");
  }
  if (H5Fis_hdf5(path_.c_str()) <= 0) {
    throw std::runtime_error(path_ + ": not an HDF5 file (NWB 2.x files are HDF5)");
  }
  file_ = Hid(H5Fopen(path_.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
  if (!file_.valid()) throw std::runtime_error(path_ + ": libhdf5 cannot open the file");
}

void NwbFile::fail(const std::string& h5path, const std::string& msg) const {
  throw std::runtime_error(path_ + ": " + h5path + ": " + msg);
}

// True when every component of the absolute path exists (H5Lexists needs the parents to).
bool NwbFile::exists(const std::string& h5path) const {
  if (h5path.empty() || h5path == "/") return true;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = h5path.find('/', pos + 1);
    const std::string prefix = h5path.substr(0, pos);
    if (prefix.empty() || prefix == "/") continue;
    if (H5Lexists(file_.get(), prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

bool NwbFile::is_group(const std::string& h5path) const {
  if (!exists(h5path)) return false;
  Hid obj(H5Oopen(file_.get(), h5path.c_str(), H5P_DEFAULT), H5Oclose);
  return obj.valid() && H5Iget_type(obj.get()) == H5I_GROUP;
}

Hid NwbFile::open_dataset(const std::string& h5path) const {
  if (!exists(h5path)) fail(h5path, "missing dataset");
  Hid ds(H5Dopen2(file_.get(), h5path.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.valid()) fail(h5path, "is not a dataset");
  return ds;
}

std::vector<hsize_t> NwbFile::shape(const Hid& ds, const std::string& h5path) const {
  Hid space(H5Dget_space(ds.get()), H5Sclose);
  if (!space.valid()) fail(h5path, "cannot read its dataspace");
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank < 0) fail(h5path, "cannot read its rank");
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

// Reads a numeric dataset of rank `rank` (0 = scalar) converted to T by libhdf5.
template <typename T>
std::vector<T> NwbFile::read(const std::string& h5path, int rank, std::vector<hsize_t>* dims_out,
                    hid_t mem_type, bool integers_only) const {
  Hid ds = open_dataset(h5path);
  const auto dims = shape(ds, h5path);
  if (static_cast<int>(dims.size()) != rank) {
    fail(h5path, "expected rank " + std::to_string(rank) + ", found rank " +
                     std::to_string(dims.size()) + " (shape " + shape_text(dims) + ")");
  }
  Hid type(H5Dget_type(ds.get()), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type.get());
  if (cls != H5T_INTEGER && (integers_only || cls != H5T_FLOAT)) {
    fail(h5path, integers_only ? "expected an integer dataset" : "expected a numeric dataset");
  }
  // A corrupt file can declare any extent: refuse one its stored bytes cannot hold before
  // allocating for it (deflate, the strongest filter libhdf5 ships, expands a stored byte to at
  // most ~1032; an element takes at least one byte). The storage size comes from the file's own
  // metadata, so the file size bounds it too.
  size_t n = 1;
  for (hsize_t d : dims) {
    if (d != 0 && n > std::numeric_limits<size_t>::max() / d)
      fail(h5path, "extent " + shape_text(dims) + " overflows");
    n *= static_cast<size_t>(d);
  }
  hsize_t file_bytes = 0;
  if (H5Fget_filesize(file_.get(), &file_bytes) < 0)
    fail(h5path, "cannot read the file size (libhdf5)");
  const hsize_t stored = std::min(H5Dget_storage_size(ds.get()), file_bytes);
  if (n > 0 && n / 1032 >= stored) {
    fail(h5path, "shape " + shape_text(dims) + " but only " + std::to_string(stored) +
                     " bytes stored (corrupt file?)");
  }
  std::vector<T> out(n);
  if (n > 0 && H5Dread(ds.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) < 0) {
    fail(h5path, "read failed (libhdf5)");
  }
  if (dims_out) *dims_out = dims;
  return out;
}

std::vector<double> NwbFile::read_doubles(const std::string& h5path, int rank,
                                          std::vector<hsize_t>* dims) const {
  return read<double>(h5path, rank, dims, H5T_NATIVE_DOUBLE, false);
}
std::vector<int64_t> NwbFile::read_ints(const std::string& h5path, int rank,
                                        std::vector<hsize_t>* dims) const {
  return read<int64_t>(h5path, rank, dims, H5T_NATIVE_INT64, true);
}

// Scalar (or one-element) numeric dataset.
double NwbFile::read_scalar(const std::string& h5path) const {
  Hid ds = open_dataset(h5path);
  const auto dims = shape(ds, h5path);
  if (!(dims.empty() || (dims.size() == 1 && dims[0] == 1))) {
    fail(h5path, "expected a scalar, found shape " + shape_text(dims));
  }
  return read_doubles(h5path, static_cast<int>(dims.size()))[0];
}

// Numeric scalar attribute `name` of the object at h5path, or `fallback` when absent.
double NwbFile::attribute(const std::string& h5path, const char* name, double fallback,
                          bool required) const {
  const htri_t has = H5Aexists_by_name(file_.get(), h5path.c_str(), name, H5P_DEFAULT);
  if (has <= 0) {
    if (required) fail(h5path, std::string("missing attribute '") + name + "'");
    return fallback;
  }
  Hid attr(H5Aopen_by_name(file_.get(), h5path.c_str(), name, H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose);
  if (!attr.valid()) fail(h5path, std::string("cannot open attribute '") + name + "'");
  Hid type(H5Aget_type(attr.get()), H5Tclose);
  const H5T_class_t cls = H5Tget_class(type.get());
  Hid space(H5Aget_space(attr.get()), H5Sclose);
  if ((cls != H5T_INTEGER && cls != H5T_FLOAT) ||
      H5Sget_simple_extent_npoints(space.get()) != 1) {
    fail(h5path, std::string("attribute '") + name + "' is not a numeric scalar");
  }
  double v = 0.0;
  if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, &v) < 0) {
    fail(h5path, std::string("cannot read attribute '") + name + "'");
  }
  return v;
}

// Text attribute `name` of the object at h5path, or "" when absent or not text.
std::string NwbFile::text_attribute(const std::string& h5path, const char* name) const {
  if (H5Aexists_by_name(file_.get(), h5path.c_str(), name, H5P_DEFAULT) <= 0) return "";
  Hid attr(H5Aopen_by_name(file_.get(), h5path.c_str(), name, H5P_DEFAULT, H5P_DEFAULT),
           H5Aclose);
  if (!attr.valid()) return "";
  Hid type(H5Aget_type(attr.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING) return "";
  return read_text(attr.get(), type.get(), true);
}

// Text of a scalar string dataset at h5path, or "" when it is not one.
std::string NwbFile::text_dataset(const std::string& h5path) const {
  Hid ds(H5Dopen2(file_.get(), h5path.c_str(), H5P_DEFAULT), H5Dclose);
  if (!ds.valid()) return "";
  Hid type(H5Dget_type(ds.get()), H5Tclose);
  if (H5Tget_class(type.get()) != H5T_STRING) return "";
  return read_text(ds.get(), type.get(), false);
}

// Absolute paths of every group named `name` below `root`, and of every group holding a
// `data` dataset (the TimeSeries there, for the error message when `name` is not found).
void NwbFile::find_groups(const std::string& root, const std::string& name,
                 std::vector<std::string>& matches, std::vector<std::string>& series) const {
  Hid group(H5Gopen2(file_.get(), root.c_str(), H5P_DEFAULT), H5Gclose);
  if (!group.valid()) fail(root, "is not a group");
  std::vector<std::string> links;
  list_links(group.get(), root, "", 0, links);
  for (const std::string& link : links) {
    const size_t slash = link.rfind('/');
    const std::string base = slash == std::string::npos ? link : link.substr(slash + 1);
    const std::string full = root + "/" + link;
    if (base == name && is_group(full)) matches.push_back(full);
    if (base == "data" && slash != std::string::npos) series.push_back(link.substr(0, slash));
  }
}

// Every link below `group` as a path relative to it, depth first in name order (what H5Lvisit
// lists). Not H5Lvisit itself: on a corrupt file whose group links back to itself libhdf5
// recurses until the stack overflows, so this walk is bounded in depth and in links.
void NwbFile::list_links(hid_t group, const std::string& root, const std::string& prefix, int depth,
                std::vector<std::string>& out) const {
  constexpr int kMaxDepth = 32;
  constexpr size_t kMaxLinks = 100'000;
  std::vector<std::pair<std::string, bool>>
      names;  // name, hard link (H5Lvisit follows only those)
  auto cb = [](hid_t, const char* link, const H5L_info_t* info, void* op) -> herr_t {
    static_cast<std::vector<std::pair<std::string, bool>>*>(op)->emplace_back(
        link, info->type == H5L_TYPE_HARD);
    return 0;
  };
  if (H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, cb, &names) < 0) {
    fail(root + (prefix.empty() ? "" : "/" + prefix), "cannot list its contents (libhdf5)");
  }
  for (const auto& [name, hard] : names) {
    if (out.size() >= kMaxLinks) fail(root, "more than 100000 links below it (corrupt file?)");
    const std::string rel = prefix.empty() ? name : prefix + "/" + name;
    out.push_back(rel);
    if (!hard || depth + 1 >= kMaxDepth) continue;
    Hid child(H5Gopen2(group, name.c_str(), H5P_DEFAULT), H5Gclose);
    if (child.valid()) list_links(child.get(), root, rel, depth + 1, out);
  }
}

std::string NwbFile::shape_text(const std::vector<hsize_t>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? " x " : "") + std::to_string(dims[i]);
  return s + ")";
}

// One string (variable or fixed length) from an attribute or a dataset of string type.
std::string NwbFile::read_text(hid_t obj, hid_t type, bool is_attr) {
  Hid space(is_attr ? H5Aget_space(obj) : H5Dget_space(obj), H5Sclose);
  if (H5Sget_simple_extent_npoints(space.get()) != 1) return "";
  if (H5Tis_variable_str(type) > 0) {
    Hid mem(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(mem.get(), H5T_VARIABLE);
    char* p = nullptr;
    const herr_t rc = is_attr ? H5Aread(obj, mem.get(), &p)
                              : H5Dread(obj, mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, &p);
    std::string out = rc >= 0 && p ? std::string(p) : std::string();
    if (p) H5free_memory(p);
    return out;
  }
  const size_t n = H5Tget_size(type);
  std::string buf(n, '\0');
  Hid mem(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(mem.get(), n);
  const herr_t rc = is_attr ? H5Aread(obj, mem.get(), buf.data())
                            : H5Dread(obj, mem.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
  if (rc < 0) return "";
  buf.resize(std::strlen(buf.c_str()));
  return buf;
}

}  // namespace spikeflow::replay
