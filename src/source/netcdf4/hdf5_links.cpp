#include "source/netcdf4/hdf5_links.hpp"

#include "core/error.hpp"
#include "source/netcdf4/hdf5_readable_driver.hpp"

namespace zp {

std::vector<HardLink> hard_links_of(hid_t grp, const std::string& where) {
  H5Handle gcpl{H5Gget_create_plist(grp), H5Pclose};
  unsigned order = 0;
  if (gcpl.id >= 0) H5Pget_link_creation_order(gcpl.id, &order);
  const H5_index_t index = (order & H5P_CRT_ORDER_TRACKED) ? H5_INDEX_CRT_ORDER : H5_INDEX_NAME;
  std::vector<HardLink> out;
  auto collect = [](hid_t g, const char* name, const H5L_info_t* info, void* data) -> herr_t {
    if (info->type != H5L_TYPE_HARD) return 0;
    H5O_info_t oi;
    if (H5Oget_info_by_name2(g, name, &oi, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return 0;
    static_cast<std::vector<HardLink>*>(data)->push_back({name, oi.type, oi.addr});
    return 0;
  };
  hsize_t idx = 0;
  if (H5Literate(grp, index, H5_ITER_INC, &idx, collect, &out) < 0) {
    rethrow_readable_error();
    throw Error::source(where, "cannot list the group's members");
  }
  return out;
}

}  // namespace zp
