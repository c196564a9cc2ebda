// A group's members as netCDF-C lists them, for the HDF5 describers (netcdf4_reader, phony_dims).
#pragma once

#include <hdf5.h>

#include <string>
#include <vector>

namespace zp {

// Closes an HDF5 identifier when it goes out of scope.
struct H5Handle {
  hid_t id = -1;
  herr_t (*close)(hid_t) = nullptr;
  H5Handle(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  H5Handle(const H5Handle&) = delete;
  H5Handle& operator=(const H5Handle&) = delete;
  ~H5Handle() {
    if (id >= 0 && close) close(id);
  }
};

struct HardLink {
  std::string name;
  H5O_type_t type = H5O_TYPE_UNKNOWN;
  haddr_t addr = HADDR_UNDEF;
};

// The group's hard links in netCDF-C's order: creation order when tracked, else by name. A failed
// listing is the reader's own error when a remote read caused it, else a source error at `where`.
std::vector<HardLink> hard_links_of(hid_t grp, const std::string& where);

}  // namespace zp
