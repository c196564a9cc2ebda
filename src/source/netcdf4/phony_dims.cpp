#include "source/netcdf4/phony_dims.hpp"

#include <H5DSpublic.h>

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

#include "core/budget.hpp"
#include "core/error.hpp"
#include "source/netcdf4/hdf5_links.hpp"

namespace zp {

namespace {

// One dimension of a group as netCDF-C matches phony axes against it.
struct Extent {
  hsize_t size = 0;
  bool unlimited = false;
};

struct Axes {
  std::vector<hsize_t> size, max;
};

Axes axes_of(hid_t dset) {
  H5Handle space{H5Dget_space(dset), H5Sclose};
  Axes a;
  const int rank = std::max(H5Sget_simple_extent_ndims(space.id), 0);
  a.size.resize(static_cast<std::size_t>(rank));
  a.max.resize(a.size.size());
  if (rank > 0) H5Sget_simple_extent_dims(space.id, a.size.data(), a.max.data());
  return a;
}

// Walks the file as netCDF-C does: ids of dimension scales first (pre-order), then phony
// dimensions group by group (post-order) until the target group.
class Numbering {
 public:
  Numbering(std::string target, std::string where)
      : target_(std::move(target)), where_(std::move(where)) {}

  // Pre-order: each dimension scale takes its _Netcdf4Dimid or the next id.
  void count_scales(hid_t grp, int depth) {
    if (!first_visit(grp, depth, scanned_)) return;
    for (const auto& m : hard_links_of(grp, where_)) {
      if (m.type == H5O_TYPE_DATASET) {
        H5Handle d{H5Dopen2(grp, m.name.c_str(), H5P_DEFAULT), H5Dclose};
        if (d.id < 0 || H5DSis_scale(d.id) <= 0) continue;
        next_id_ = std::max(next_id_, scale_id(d.id).value_or(next_id_) + 1);
      } else if (m.type == H5O_TYPE_GROUP) {
        H5Handle g{H5Gopen2(grp, m.name.c_str(), H5P_DEFAULT), H5Gclose};
        if (g.id >= 0) count_scales(g.id, depth + 1);
      }
    }
  }

  // Post-order: true once the target group is reached (its own phony dimensions not counted).
  bool count_phony(hid_t grp, const std::string& path, int depth) {
    if (!first_visit(grp, depth, matched_)) return false;
    const auto members = hard_links_of(grp, where_);
    for (const auto& m : members) {
      if (m.type != H5O_TYPE_GROUP) continue;
      H5Handle g{H5Gopen2(grp, m.name.c_str(), H5P_DEFAULT), H5Gclose};
      const std::string child = path.empty() ? m.name : path + "/" + m.name;
      if (g.id >= 0 && count_phony(g.id, child, depth + 1)) return true;
    }
    if (path == target_) return true;
    std::vector<Extent> dims;  // the group's scales (all read before any matching), then phony
    for (bool scales : {true, false})
      for (const auto& m : members)
        if (m.type == H5O_TYPE_DATASET) match_dataset(grp, m.name, scales, dims);
    return false;
  }

  int first_id() const { return next_id_ + phony_; }

 private:
  static std::optional<int> scale_id(hid_t dset) {
    if (H5Aexists(dset, "_Netcdf4Dimid") <= 0) return std::nullopt;
    H5Handle att{H5Aopen(dset, "_Netcdf4Dimid", H5P_DEFAULT), H5Aclose};
    int id = 0;
    if (att.id < 0 || H5Aread(att.id, H5T_NATIVE_INT, &id) < 0) return std::nullopt;
    return id;
  }

  // A dataset's axes against the group's dimensions: scales' as they are, phony ones as made.
  void match_dataset(hid_t grp, const std::string& name, bool scales, std::vector<Extent>& dims) {
    H5Handle d{H5Dopen2(grp, name.c_str(), H5P_DEFAULT), H5Dclose};
    if (d.id < 0) return;
    const Axes a = axes_of(d.id);
    if ((H5DSis_scale(d.id) > 0) != scales) return;
    if (scales) {
      if (!a.size.empty()) dims.push_back({a.size[0], a.max[0] == H5S_UNLIMITED});
      return;
    }
    if (a.size.empty() || H5Aexists(d.id, "DIMENSION_LIST") > 0) return;
    std::vector<std::size_t> used;
    for (std::size_t k = 0; k < a.size.size(); ++k) {
      const bool unlimited = a.max[k] == H5S_UNLIMITED;
      std::size_t i = 0;
      for (; i < dims.size(); ++i)
        if (dims[i].size == a.size[k] && dims[i].unlimited == unlimited &&
            std::find(used.begin(), used.end(), i) == used.end())
          break;
      if (i == dims.size()) {
        dims.push_back({a.size[k], unlimited});
        ++phony_;
      }
      used.push_back(i);
    }
  }

  // Each group once (hard links can make cycles: false the second time), within the budget's
  // count and depth.
  bool first_visit(hid_t grp, int depth, std::set<haddr_t>& seen) const {
    if (depth > budget::kGroupDepth)
      throw Error::source(
          where_, "groups nested more than " + std::to_string(budget::kGroupDepth) + " deep");
    H5O_info_t self;
    if (H5Oget_info2(grp, &self, H5O_INFO_BASIC) >= 0 && !seen.insert(self.addr).second)
      return false;
    if (static_cast<int64_t>(seen.size()) > budget::kGroups)
      throw Error::source(where_, "more than " + std::to_string(budget::kGroups) + " groups");
    return true;
  }

  std::string target_, where_;
  int next_id_ = 0;
  int phony_ = 0;
  std::set<haddr_t> scanned_, matched_;
};

}  // namespace

int first_phony_id(hid_t file, const std::string& group, const std::string& where) {
  H5Handle root{H5Gopen2(file, "/", H5P_DEFAULT), H5Gclose};
  if (root.id < 0) throw Error::source(where, "cannot open the root group: the file is damaged");
  std::string target;
  for (std::size_t start = 0; start < group.size();) {  // "a//b/" is "a/b"
    const auto slash = std::min(group.find('/', start), group.size());
    if (slash > start) target += (target.empty() ? "" : "/") + group.substr(start, slash - start);
    start = slash + 1;
  }
  Numbering n(target, where);
  n.count_scales(root.id, 0);
  n.count_phony(root.id, "", 0);
  return n.first_id();
}

}  // namespace zp
