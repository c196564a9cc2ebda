#include "source/netcdf4/netcdf4_reader.hpp"

#include <H5DSpublic.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "codec/hdf5_filters.hpp"
#include "core/budget.hpp"
#include "core/cf_time.hpp"
#include "core/dtype.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/json_nonfinite.hpp"
#include "core/utf8.hpp"
#include "source/char_arrays.hpp"
#include "source/netcdf4/hdf5_links.hpp"
#include "source/netcdf4/hdf5_readable_driver.hpp"
#include "source/netcdf4/hdf5_storage.hpp"
#include "source/netcdf4/phony_dims.hpp"
#include "source/netcdf_values.hpp"

namespace zp {

namespace {

// netCDF-C's own attributes, hidden from users (dimension-scale bookkeeping and provenance).
bool hidden_attribute(const std::string& name) {
  static const std::set<std::string> hidden = {
      "CLASS",         "DIMENSION_LIST",      "NAME",          "REFERENCE_LIST",
      "_Netcdf4Dimid", "_Netcdf4Coordinates", "_NCProperties", "_nc3_strict"};
  return hidden.count(name) > 0;
}

constexpr const char* kDimOnly = "This is a netCDF dimension but not a netCDF variable";
constexpr const char* kNonCoordPrefix = "_nc4_non_coord_";

enum class Kind { Numeric, Char, String, Other };

struct TypeInfo {
  Kind kind = Kind::Other;
  DType dtype;
};

TypeInfo type_info(hid_t type) {
  const H5T_class_t cls = H5Tget_class(type);
  const auto size = static_cast<int>(H5Tget_size(type));
  if (cls == H5T_INTEGER && (size == 1 || size == 2 || size == 4 || size == 8))
    return {Kind::Numeric, DType{H5Tget_sign(type) == H5T_SGN_NONE ? 'u' : 'i', size, false}};
  if (cls == H5T_FLOAT && (size == 4 || size == 8)) return {Kind::Numeric, DType{'f', size, false}};
  if (cls == H5T_STRING) {
    if (H5Tis_variable_str(type) > 0) return {Kind::String, {}};
    if (size == 1) return {Kind::Char, {}};
  }
  return {Kind::Other, {}};
}

hid_t native_of(DType t) {
  if (t.kind == 'f') return t.size == 4 ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE;
  const bool u = t.kind == 'u';
  switch (t.size) {
    case 1:
      return u ? H5T_NATIVE_UCHAR : H5T_NATIVE_SCHAR;
    case 2:
      return u ? H5T_NATIVE_USHORT : H5T_NATIVE_SHORT;
    case 4:
      return u ? H5T_NATIVE_UINT : H5T_NATIVE_INT;
    default:
      return u ? H5T_NATIVE_ULLONG : H5T_NATIVE_LLONG;
  }
}

hsize_t npoints(hid_t space) {
  if (H5Sget_simple_extent_type(space) == H5S_NULL) return 0;
  const hssize_t n = H5Sget_simple_extent_npoints(space);
  return n < 0 ? 0 : static_cast<hsize_t>(n);
}

// Variable-length strings of a dataset or attribute, read whole.
std::vector<std::string> read_vlen_strings(hid_t obj, bool attribute, hid_t space,
                                           const std::string& where) {
  const hsize_t n = npoints(space);
  std::vector<char*> items(n, nullptr);
  H5Handle mem{H5Tcopy(H5T_C_S1), H5Tclose};
  H5Tset_size(mem.id, H5T_VARIABLE);
  // HDF5 converts no character set into another: read in the stored one (NCL and older netCDF-C
  // store string attributes as ASCII); the bytes are made UTF-8 where they become text.
  const H5Handle stored{attribute ? H5Aget_type(obj) : H5Dget_type(obj), H5Tclose};
  const H5T_cset_t cset = stored.id >= 0 ? H5Tget_cset(stored.id) : H5T_CSET_ERROR;
  H5Tset_cset(mem.id, cset == H5T_CSET_ASCII ? H5T_CSET_ASCII : H5T_CSET_UTF8);
  std::vector<std::string> out;
  if (n == 0) return out;
  const herr_t rc = attribute ? H5Aread(obj, mem.id, items.data())
                              : H5Dread(obj, mem.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, items.data());
  if (rc < 0) hdf5_failed(where, "cannot read strings");
  for (char* s : items) out.emplace_back(s ? s : "");
  H5Dvlen_reclaim(mem.id, space, H5P_DEFAULT, items.data());
  return out;
}

struct AttrContext {
  Attrs* attrs;
  std::string where;
  std::exception_ptr error;
};

void read_one_attr(hid_t obj, const char* name, Attrs& attrs, const std::string& where,
                   bool hidden_too = false) {
  if (!hidden_too && hidden_attribute(name)) return;
  H5Handle att{H5Aopen(obj, name, H5P_DEFAULT), H5Aclose};
  if (att.id < 0) hdf5_failed(where, std::string("cannot open attribute '") + name + "'");
  H5Handle type{H5Aget_type(att.id), H5Tclose};
  H5Handle space{H5Aget_space(att.id), H5Sclose};
  const TypeInfo t = type_info(type.id);
  const hsize_t n = npoints(space.id);
  if (H5Tget_class(type.id) == H5T_STRING && H5Tis_variable_str(type.id) <= 0) {
    // Fixed-length text: netCDF-C's NC_CHAR (one string of the type's size), or an array of them.
    const std::size_t width = H5Tget_size(type.id);
    std::string all(width * n, '\0');
    if (n > 0 && H5Aread(att.id, type.id, all.data()) < 0)
      hdf5_failed(where, std::string("cannot read attribute '") + name + "'");
    if (n <= 1) {
      while (!all.empty() && all.back() == '\0') all.pop_back();
      attrs[name] = to_valid_utf8(all);
    } else {
      nlohmann::json arr = nlohmann::json::array();
      for (hsize_t i = 0; i < n; ++i) {
        std::string s = all.substr(i * width, width);
        s.resize(std::strlen(s.c_str()));
        arr.push_back(to_valid_utf8(s));
      }
      attrs[name] = arr;
    }
  } else if (t.kind == Kind::String) {
    nlohmann::json arr = nlohmann::json::array();
    for (auto& s : read_vlen_strings(att.id, true, space.id, where))
      arr.push_back(to_valid_utf8(s));
    attrs[name] = arr.size() == 1 ? arr[0] : arr;
  } else if (t.kind == Kind::Numeric) {
    std::vector<unsigned char> buf(n * static_cast<std::size_t>(t.dtype.size));
    if (n > 0 && H5Aread(att.id, native_of(t.dtype), buf.data()) < 0)
      hdf5_failed(where, std::string("cannot read attribute '") + name + "'");
    nlohmann::json arr = nlohmann::json::array();
    for (hsize_t k = 0; k < n; ++k) arr.push_back(number_json(buf.data(), k, t.dtype, false));
    attrs[name] = arr.size() == 1 ? arr[0] : arr;
  }
}

// Attributes in creation order when the object tracks it (netCDF-C writes them so), else by name.
Attrs read_attrs(hid_t obj, hid_t create_plist, const std::string& where) {
  Attrs attrs = Attrs::object();
  unsigned order = 0;
  if (create_plist >= 0) H5Pget_attr_creation_order(create_plist, &order);
  const H5_index_t index = (order & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  std::vector<std::string> names;
  auto collect = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->emplace_back(name);
    return 0;
  };
  hsize_t idx = 0;
  if (H5Aiterate2(obj, index, H5_ITER_INC, &idx, collect, &names) < 0)
    hdf5_failed(where, "cannot list attributes");
  for (const auto& n : names) read_one_attr(obj, n.c_str(), attrs, where);
  return attrs;
}

// Hard links can make a group its own descendant (netCDF-C never writes that): each group is
// listed once, under its first path, within the budget's count and depth (core/budget.hpp).

void list_groups(hid_t grp, const std::string& prefix, std::vector<std::string>& out,
                 const std::string& where, std::set<haddr_t>& seen, int depth = 0) {
  if (depth > budget::kGroupDepth)
    throw Error::source(where, "groups nested more than " + std::to_string(budget::kGroupDepth) +
                                   " deep; refusing to read them");
  for (const auto& l : hard_links_of(grp, where)) {
    if (l.type != H5O_TYPE_GROUP || !seen.insert(l.addr).second) continue;
    if (static_cast<int64_t>(out.size()) >= budget::kGroups)
      throw Error::source(
          where, "more than " + std::to_string(budget::kGroups) + " groups; refusing to read them");
    out.push_back(prefix + l.name);
    H5Handle child{H5Gopen2(grp, l.name.c_str(), H5P_DEFAULT), H5Gclose};
    if (child.id >= 0) list_groups(child.id, prefix + l.name + "/", out, where, seen, depth + 1);
  }
}

void list_groups(hid_t grp, const std::string& prefix, std::vector<std::string>& out,
                 const std::string& where) {
  std::set<haddr_t> seen;
  H5O_info_t self;
  if (H5Oget_info2(grp, &self, H5O_INFO_BASIC) >= 0) seen.insert(self.addr);
  list_groups(grp, prefix, out, where, seen);
}

std::optional<std::vector<int>> int_attr(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) return std::nullopt;
  H5Handle att{H5Aopen(obj, name, H5P_DEFAULT), H5Aclose};
  H5Handle space{H5Aget_space(att.id), H5Sclose};
  std::vector<int> v(npoints(space.id));
  if (!v.empty() && H5Aread(att.id, H5T_NATIVE_INT, v.data()) < 0) return std::nullopt;
  return v;
}

std::string string_attr(hid_t obj, const char* name) {
  if (H5Aexists(obj, name) <= 0) return {};
  Attrs a = Attrs::object();
  read_one_attr(obj, name, a, name, true);
  return a.contains(name) && a[name].is_string() ? a[name].get<std::string>() : std::string();
}

struct Dim {
  std::string name;
  int64_t size = 0;
  bool unlimited = false;
  int id = 0;
  haddr_t scale = HADDR_UNDEF;  // its dimension scale's address (none for phony dims)
  std::size_t group = 0;        // depth of its group in the chain (0 = root)
};

// The dimension a dimension scale defines.
std::optional<Dim> scale_dim(hid_t dset, const std::string& name, haddr_t addr) {
  H5Handle space{H5Dget_space(dset), H5Sclose};
  const int rank = H5Sget_simple_extent_ndims(space.id);
  if (rank < 1) return std::nullopt;
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank)), maxdims(dims.size());
  H5Sget_simple_extent_dims(space.id, dims.data(), maxdims.data());
  Dim d;
  d.name = name;
  d.size = static_cast<int64_t>(dims[0]);
  d.unlimited = maxdims[0] == H5S_UNLIMITED;
  d.id = -1;
  if (auto id = int_attr(dset, "_Netcdf4Dimid"); id && id->size() == 1) d.id = (*id)[0];
  d.scale = addr;
  return d;
}

// The dimension scale attached to each axis of a dataset (HADDR_UNDEF where none), from its
// DIMENSION_LIST attribute: object references, which in HDF5 1.10 are the scales' addresses, so
// nothing needs to be dereferenced (opened).
std::vector<haddr_t> dimension_list(hid_t dset, int rank) {
  std::vector<haddr_t> out(static_cast<std::size_t>(std::max(rank, 0)), HADDR_UNDEF);
  if (rank < 1 || H5Aexists(dset, "DIMENSION_LIST") <= 0) return out;
  H5Handle att{H5Aopen(dset, "DIMENSION_LIST", H5P_DEFAULT), H5Aclose};
  H5Handle space{H5Aget_space(att.id), H5Sclose};
  H5Handle mem{H5Tvlen_create(H5T_STD_REF_OBJ), H5Tclose};
  if (att.id < 0 || npoints(space.id) != out.size()) return out;
  std::vector<hvl_t> lists(out.size());
  if (H5Aread(att.id, mem.id, lists.data()) < 0) return out;
  for (std::size_t a = 0; a < out.size(); ++a)
    if (lists[a].len > 0 && lists[a].p) out[a] = static_cast<const hobj_ref_t*>(lists[a].p)[0];
  H5Dvlen_reclaim(mem.id, space.id, H5P_DEFAULT, lists.data());
  return out;
}

// An unlimited dimension is as long as the longest variable along it (netCDF-C's rule: a scale
// without a variable of its own is never extended as data is appended).
void note_unlimited_extents(hid_t dset, std::map<haddr_t, int64_t>& extent) {
  H5Handle space{H5Dget_space(dset), H5Sclose};
  const int rank = H5Sget_simple_extent_ndims(space.id);
  if (rank < 1) return;
  std::vector<hsize_t> dims(static_cast<std::size_t>(rank)), maxdims(dims.size());
  H5Sget_simple_extent_dims(space.id, dims.data(), maxdims.data());
  if (std::find(maxdims.begin(), maxdims.end(), H5S_UNLIMITED) == maxdims.end()) return;
  const std::vector<haddr_t> scales = dimension_list(dset, rank);
  for (std::size_t a = 0; a < dims.size(); ++a) {
    if (maxdims[a] != H5S_UNLIMITED || scales[a] == HADDR_UNDEF) continue;
    auto& e = extent[scales[a]];
    e = std::max(e, static_cast<int64_t>(dims[a]));
  }
}

void read_whole(hid_t dset, hid_t mem_type, void* out, const std::string& where) {
  if (H5Dread(dset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) < 0)
    hdf5_failed(where, "cannot read the variable");
}

// The chain of groups from the root to `group`: their dimensions are visible to its variables.
std::vector<std::string> group_chain(const std::string& group) {
  std::vector<std::string> chain = {"/"};
  std::size_t start = 0;
  std::string at;
  while (start < group.size()) {
    const auto slash = group.find('/', start);
    const std::string part =
        group.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    start = slash == std::string::npos ? group.size() : slash + 1;
    if (part.empty()) continue;
    at += "/" + part;
    chain.push_back(at);
  }
  return chain;
}

// Opens one group of the chain. External links are never followed: HDF5 would open the file
// they name on the local file system, whoever wrote the link.
hid_t open_group(hid_t file, const std::string& at, const std::string& group,
                 const std::string& path) {
  H5Handle gapl{H5Pcreate(H5P_GROUP_ACCESS), H5Pclose};
  H5Pset_elink_cb(
      gapl.id,
      [](const char*, const char*, const char*, const char*, unsigned*, hid_t, void*) {
        return herr_t{-1};
      },
      nullptr);
  const hid_t g = H5Gopen2(file, at.c_str(), gapl.id);
  if (g >= 0) return g;
  rethrow_readable_error();
  // The root, or a group the file names but cannot open, is damage, not a wrong `group` key.
  if (at == "/") throw Error::source(path, "cannot open the root group: the file is damaged");
  if (H5Lexists(file, at.c_str(), H5P_DEFAULT) > 0) {
    H5L_info_t info;
    if (H5Lget_info(file, at.c_str(), &info, H5P_DEFAULT) >= 0 && info.type == H5L_TYPE_EXTERNAL)
      throw Error::source(path, "group '" + group +
                                    "' is an external link to another file; zarr-parallel "
                                    "reads only what is stored inside the file");
    throw Error::source(path, "cannot open group '" + at + "': the file is damaged");
  }
  std::vector<std::string> all;
  H5Handle root{H5Gopen2(file, "/", H5P_DEFAULT), H5Gclose};
  list_groups(root.id, "", all, path);
  std::string known;
  for (const auto& n : all) known += (known.empty() ? "" : ", ") + n;
  throw Error::config("group", "no group '" + group + "' in " + path +
                                   (known.empty() ? " (it has none)" : " (has: " + known + ")"));
}

// What describing one file holds between its steps.
struct Description {
  hid_t file;
  const std::string& path;
  const std::string& group;
  std::vector<std::string> chain;  // the groups from the root to `group`
  std::vector<Dim> dims;           // of every group of the chain, then phony ones
  int next_auto_id = 0;
  std::optional<int> next_phony;  // counted only when needed (phony_dims.hpp)
  std::vector<HardLink> members;  // of the group read
  H5Handle grp{-1, H5Gclose};
  // The group's datasets, each opened once for the whole description (opens dominate its cost).
  std::map<std::string, std::unique_ptr<H5Handle>> opened;
  std::set<haddr_t> scales;  // which of them are dimension scales (asked once: reads attributes)
};

// A variable of the group between its dimensions and the rest of its description.
struct Pending {
  Variable v;
  std::vector<std::size_t> dim_index;  // into dims, every axis (the char length included)
  Kind kind;
  std::string link;
};

// The dimension scales of one group of the chain; the target group's datasets stay open.
void read_group_dims(Description& s, std::size_t depth, std::map<haddr_t, int64_t>& extent) {
  H5Handle gh{open_group(s.file, s.chain[depth], s.group, s.path), H5Gclose};
  std::vector<HardLink> links = hard_links_of(gh.id, s.path);
  const bool target = depth + 1 == s.chain.size();
  for (const auto& l : links) {
    if (l.type != H5O_TYPE_DATASET) continue;
    auto handle =
        std::make_unique<H5Handle>(H5Dopen2(gh.id, l.name.c_str(), H5P_DEFAULT), H5Dclose);
    if (handle->id < 0) hdf5_failed(s.path, "cannot open dataset '" + l.name + "'");
    const hid_t d = handle->id;
    if (target) s.opened[l.name] = std::move(handle);
    const bool scale = H5DSis_scale(d) > 0;
    if (target && scale) s.scales.insert(l.addr);
    if (auto dim = scale ? scale_dim(d, l.name, l.addr) : std::nullopt) {
      dim->group = depth;
      if (dim->id < 0) dim->id = s.next_auto_id;
      s.next_auto_id = std::max(s.next_auto_id, dim->id + 1);
      s.dims.push_back(*dim);
    } else {
      note_unlimited_extents(d, extent);
    }
  }
  if (target) {
    s.members = std::move(links);
    s.grp.id = gh.id;
    gh.id = -1;
  }
}

// Open: the chain of groups and the dimensions visible to the group, in netCDF-C's order.
void open_dimensions(Description& s) {
  std::map<haddr_t, int64_t> unlimited_extent;  // by dimension scale
  for (std::size_t depth = 0; depth < s.chain.size(); ++depth)
    read_group_dims(s, depth, unlimited_extent);
  for (auto& d : s.dims)
    if (d.unlimited && unlimited_extent.count(d.scale))
      d.size = std::max(d.size, unlimited_extent[d.scale]);
  std::sort(s.dims.begin(), s.dims.end(), [](const Dim& a, const Dim& b) { return a.id < b.id; });
}

// Dimensions without scales (HDF5 files not written by netCDF): netCDF-C's phony dimensions, one
// per distinct length within a variable, numbered across the file as netCDF-C numbers them.
std::size_t phony_dim(Description& s, int64_t size, bool unlimited,
                      const std::vector<std::size_t>& taken) {
  const std::size_t depth = s.chain.size() - 1;
  for (std::size_t i = 0; i < s.dims.size(); ++i)
    if (s.dims[i].group == depth && s.dims[i].size == size && s.dims[i].unlimited == unlimited &&
        std::find(taken.begin(), taken.end(), i) == taken.end())
      return i;
  if (!s.next_phony)
    s.next_phony = std::max(s.next_auto_id, first_phony_id(s.file, s.group, s.path));
  Dim d;
  d.id = (*s.next_phony)++;
  d.unlimited = unlimited;
  d.name = "phony_dim_" + std::to_string(d.id);
  d.size = size;
  d.group = depth;
  s.dims.push_back(d);
  return s.dims.size() - 1;
}

// The dimension of axis `a` of dataset `d` (link `l`): a scale's own, its DIMENSION_LIST's, else
// a phony one.
std::optional<std::size_t> scale_of_axis(const Description& s, const HardLink& l, bool scale, int a,
                                         const std::optional<std::vector<int>>& coords,
                                         const std::vector<haddr_t>& scales) {
  const auto k = static_cast<std::size_t>(a);
  std::optional<std::size_t> found;
  if (scale && coords && k < coords->size()) {
    for (std::size_t i = 0; i < s.dims.size(); ++i)
      if (s.dims[i].id == (*coords)[k]) found = i;
  } else if (scale && a == 0) {
    for (std::size_t i = 0; i < s.dims.size(); ++i)
      if (s.dims[i].scale == l.addr) found = i;
  } else if (!scale && scales[k] != HADDR_UNDEF) {
    for (std::size_t i = 0; i < s.dims.size(); ++i)
      if (s.dims[i].scale == scales[k]) found = i;
  }
  return found;
}

// The dimensions of each axis of dataset `d` (of dataspace `space`) into p.dim_index.
void axis_dims(Description& s, hid_t d, hid_t space, const HardLink& l, bool scale, Pending& p) {
  const int rank = std::max(H5Sget_simple_extent_ndims(space), 0);
  std::vector<hsize_t> shape(static_cast<std::size_t>(rank)), maxshape(shape.size());
  if (rank > 0) H5Sget_simple_extent_dims(space, shape.data(), maxshape.data());
  const auto coords = scale ? int_attr(d, "_Netcdf4Coordinates") : std::nullopt;
  const std::vector<haddr_t> scales = scale ? std::vector<haddr_t>() : dimension_list(d, rank);
  for (int a = 0; a < rank; ++a) {
    const auto k = static_cast<std::size_t>(a);
    auto found = scale_of_axis(s, l, scale, a, coords, scales);
    if (!found)
      found =
          phony_dim(s, static_cast<int64_t>(shape[k]), maxshape[k] == H5S_UNLIMITED, p.dim_index);
    p.dim_index.push_back(*found);
  }
}

// One member of the group as a variable with its dimensions; nullopt for a dimension without a
// variable, and for what netCDF-C cannot read (noted in ds.unsupported).
std::optional<Pending> pending_variable(Description& s, const HardLink& l, Dataset& ds) {
  const hid_t d = s.opened.at(l.name)->id;
  const bool scale = s.scales.count(l.addr) > 0;
  if (scale && string_attr(d, "NAME").rfind(kDimOnly, 0) == 0) return std::nullopt;
  std::string name = l.name;
  if (name.rfind(kNonCoordPrefix, 0) == 0) name = name.substr(std::strlen(kNonCoordPrefix));
  H5Handle type{H5Dget_type(d), H5Tclose};
  const TypeInfo t = type_info(type.id);
  H5Handle space{H5Dget_space(d), H5Sclose};
  if (H5Sget_simple_extent_type(space.id) == H5S_NULL) {  // no value at all, not even one
    ds.unsupported.emplace_back(name,
                                "an HDF5 dataset with a null dataspace (no value: netCDF-C, and "
                                "so xarray, cannot read it)");
    return std::nullopt;
  }
  Pending p{Variable{}, {}, t.kind, l.name};
  p.v.name = name;
  p.v.origin = s.path;
  axis_dims(s, d, space.id, l, scale, p);
  // netCDF-C gives it its dimensions (they number the next ones), though it is not read here.
  if (t.kind == Kind::Other) {
    ds.unsupported.emplace_back(name, "of a user-defined type");
    return std::nullopt;
  }
  return p;
}

// Variables: every dataset of the group with its dimensions; then the dataset's dimensions,
// phony ones numbered after the scales as netCDF-C numbers them.
std::vector<Pending> variables_and_dims(Description& s, Dataset& ds) {
  std::vector<Pending> vars;
  for (const auto& l : s.members)
    if (l.type == H5O_TYPE_DATASET)
      if (auto p = pending_variable(s, l, ds)) vars.push_back(std::move(*p));
  std::vector<std::size_t> visible(s.dims.size());
  for (std::size_t i = 0; i < s.dims.size(); ++i) visible[i] = i;
  std::stable_sort(visible.begin(), visible.end(),
                   [&](std::size_t a, std::size_t b) { return s.dims[a].id < s.dims[b].id; });
  for (std::size_t i : visible)
    ds.dims.push_back({s.dims[i].name, s.dims[i].size, s.dims[i].unlimited});
  return vars;
}

// How a variable's text is laid out (xarray's rule: the last axis of chars is the strings'
// length only when it is stackable).
struct TextShape {
  bool stacked = false;
  bool char_scalar = false;
  bool char_array = false;
  bool strings = false;
  bool text = false;
};

TextShape text_shape(const Description& s, const Pending& p, const std::vector<DimsUse>& uses) {
  const std::size_t n = p.dim_index.size();
  TextShape t;
  t.stacked =
      p.kind == Kind::Char && n >= 1 && char_dim_stackable(s.dims[p.dim_index.back()].name, uses);
  t.char_scalar = p.kind == Kind::Char && (n == 0 || (n == 1 && t.stacked));
  t.char_array = p.kind == Kind::Char && !t.char_scalar;
  t.strings = p.kind == Kind::String;
  t.text = p.kind != Kind::Numeric;
  return t;
}

// The variable's dtype, dimensions and shape (a char's length is part of its element).
void shape_of(const Description& s, Pending& p, const TextShape& t, hid_t type) {
  Variable& v = p.v;
  const std::size_t n = p.dim_index.size();
  if (t.char_scalar) {
    const int64_t len = n == 0 ? 1 : s.dims[p.dim_index[0]].size;
    v.dtype = DType{'S', static_cast<int>(std::max<int64_t>(len, 1)), false};
    return;
  }
  v.dtype = type_info(type).dtype;
  for (std::size_t a = 0; a < n; ++a) {
    if (t.stacked && a + 1 == n) break;  // the string length: part of the element
    v.dims.push_back(s.dims[p.dim_index[a]].name);
    v.shape.push_back(s.dims[p.dim_index[a]].size);
  }
}

// Attributes, the fill value, and what reads of never-written chunks give: the dataset's fill
// value (netCDF sets it to _FillValue or the type's default; HDF5's own default is 0), else
// netCDF's default.
void attributes_of(Pending& p, const TextShape& t, hid_t d, hid_t dcpl, const std::string& where) {
  Variable& v = p.v;
  v.attrs = read_attrs(d, dcpl, where);
  v.fill_value = nullptr;
  if (p.kind == Kind::Char) {
    take_char_fill_value(v);
  } else if (t.text) {
    v.attrs.erase("_FillValue");  // xarray's strings: objects, kept without a fill value
  } else if (v.attrs.contains("_FillValue")) {
    v.fill_value = zarr_fill_value(nonfinite_numbers_to_markers(v.attrs["_FillValue"]));
    v.attrs.erase("_FillValue");
  }
  if (t.text) {
    v.missing_chunk_value = nullptr;
    return;
  }
  unsigned char fill[8] = {};
  H5D_fill_value_t status = H5D_FILL_VALUE_UNDEFINED;
  H5Pfill_value_defined(dcpl, &status);
  if (status == H5D_FILL_VALUE_UNDEFINED || H5Pget_fill_value(dcpl, native_of(v.dtype), fill) < 0)
    default_fill(v.dtype, fill);
  v.missing_chunk_value = number_json(fill, 0, v.dtype);
}

// Variable-length strings, read whole into fixed-width text as wide as the widest.
void hold_strings(Variable& v, hid_t d, std::size_t n, const std::string& where) {
  H5Handle space{H5Dget_space(d), H5Sclose};
  check_whole_text_size(n * sizeof(char*), where);
  std::vector<std::string> items = read_vlen_strings(d, false, space.id, where);
  std::size_t width = 1;
  for (const auto& s : items) width = std::max(width, std::strlen(s.c_str()));
  check_whole_text_size(n * width, where);
  Bytes data(n * width, 0);
  for (std::size_t i = 0; i < items.size() && i < n; ++i)
    std::memcpy(data.data() + i * width, items[i].c_str(), std::strlen(items[i].c_str()));
  v.dtype = DType{'S', static_cast<int>(width), false};
  v.object_codec = "vlen-utf8";
  v.hold_whole(std::move(data));
}

// Text, and scalars, travel inline in the manifest: read here, whole.
void hold_inline_values(const Description& s, Pending& p, const TextShape& t, hid_t d, hid_t type,
                        const std::string& where) {
  Variable& v = p.v;
  std::size_t n = 1;
  for (int64_t x : v.shape) n *= static_cast<std::size_t>(x);
  if (t.strings) {
    hold_strings(v, d, n, where);
  } else if (t.char_array) {
    const auto width = static_cast<std::size_t>(t.stacked ? s.dims[p.dim_index.back()].size : 1);
    v.dtype = DType{'S', static_cast<int>(std::max<std::size_t>(width, 1)), false};
    check_whole_text_size(n * width, where);
    Bytes data(n * static_cast<std::size_t>(v.dtype.size), 0);
    if (n > 0 && width > 0) read_whole(d, type, data.data(), where);
    v.hold_whole(std::move(data));
  } else if (v.ndim() == 0) {
    // A scalar (grid mapping, scalar coordinate): its one value travels inline in the manifest.
    auto value = std::make_shared<Bytes>(static_cast<std::size_t>(v.dtype.size), 0);
    const bool no_chars =
        t.char_scalar && p.dim_index.size() == 1 && s.dims[p.dim_index[0]].size == 0;
    if (!no_chars) read_whole(d, t.char_scalar ? type : native_of(v.dtype), value->data(), where);
    v.grid = ChunkGrid::regular({}, {});
    v.chunks = {ChunkRef{}};
    v.chunks[0].kind = ChunkRef::Kind::Inline;
    v.chunks[0].data = std::move(value);
  }
}

// A dimension coordinate's values, read whole for the join's digest; kept for the unlimited
// dimension and any time axis (the usual concat_dim, fixed in xarray's to_netcdf output): the
// join converts units and holds the joined values.
void coordinate_values(const Variable& v, const Dataset& ds, hid_t d, const std::string& where,
                       ScanPart& out) {
  // Counted first (a 6 kB file can declare 2^34 values).
  budget::checked_product({v.shape[0]}, budget::kCoordinateValues, where,
                          "values in a dimension coordinate (read whole)");
  std::vector<double> values(static_cast<std::size_t>(v.shape[0]));
  const Dimension* dim = ds.find_dim(v.name);
  const std::size_t bytes = values.size() * static_cast<std::size_t>(v.dtype.size);
  const bool axis =
      (dim && dim->unlimited) || (v.attrs.contains("units") && v.attrs["units"].is_string() &&
                                  is_time_units(v.attrs["units"].get<std::string>()));
  // Read in the stored type: a read that converts (to double) makes HDF5 clear a 1 MiB
  // conversion buffer first, which was a tenth of describing a small file. The join keeps the
  // axis's bytes; the digest takes doubles.
  Bytes native(bytes, 0);
  if (bytes > 0) read_whole(d, native_of(v.dtype), native.data(), where);
  for (std::size_t i = 0; i < values.size(); ++i)
    values[i] = load_as_double(native.data(), i, v.dtype.native());
  if (axis && v.dtype.numeric() && v.object_codec.empty() && bytes <= kMaxJoinValueBytes)
    out.join_values[v.name] = std::move(native);
  out.coord_digests[v.name] = sha256_hex(
      std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double)));
}

// One variable's description but its chunk manifest: dtype and shape, attributes and fill values,
// inline values, a coordinate's digest.
void describe_variable(const Description& s, Pending& p, const std::vector<DimsUse>& uses,
                       ScanPart& out) {
  Variable& v = p.v;
  const std::string where = s.path + ", variable '" + v.name + "'";
  const hid_t d = s.opened.at(p.link)->id;
  H5Handle dcpl{H5Dget_create_plist(d), H5Pclose};
  check_storage_inside_the_file(dcpl.id, where);
  H5Handle type{H5Dget_type(d), H5Tclose};
  const TextShape t = text_shape(s, p, uses);
  shape_of(s, p, t, type.id);
  attributes_of(p, t, d, dcpl.id, where);
  hold_inline_values(s, p, t, d, type.id, where);
  if (v.ndim() == 1 && v.dims[0] == v.name && !t.text) coordinate_values(v, out.ds, d, where, out);
  out.ds.variables.push_back(std::move(v));
}

// The dataset's own entries: engine, file, group, its subgroups and attributes.
void group_of(const Description& s, Dataset& ds) {
  ds.engine = "netcdf";
  ds.files = {s.path};
  ds.group = s.group;
  list_groups(s.grp.id, s.group.empty() ? "" : s.group + "/", ds.groups, s.path);
  H5Handle gcpl{H5Gget_create_plist(s.grp.id), H5Pclose};
  ds.attrs = read_attrs(s.grp.id, gcpl.id, s.path);
}

}  // namespace

// open → dimensions → variables → attributes → chunk manifest.
ScanPart describe_netcdf4(hid_t file, const std::string& path, const std::string& group) {
  Description s{file, path, group, group_chain(group)};
  open_dimensions(s);
  ScanPart out;
  group_of(s, out.ds);
  std::vector<Pending> vars = variables_and_dims(s, out.ds);
  std::vector<DimsUse> uses;
  for (const auto& p : vars) {
    DimsUse u{p.v.name, {}, p.kind == Kind::Char};
    for (std::size_t i : p.dim_index) u.dims.push_back(s.dims[i].name);
    uses.push_back(std::move(u));
  }
  for (auto& p : vars) describe_variable(s, p, uses, out);
  for (std::size_t i = 0; i < vars.size(); ++i) {
    Variable& v = out.ds.variables[i];
    if (v.ndim() > 0 && v.chunks.empty())
      describe_hdf5_storage(s.opened.at(vars[i].link)->id, v, path + ", variable '" + v.name + "'");
  }
  return out;
}

}  // namespace zp
