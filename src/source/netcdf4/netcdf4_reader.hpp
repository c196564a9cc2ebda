// NetCDF-4 through HDF5 alone: the netCDF-4 data model (dimensions from dimension scales,
// variables, attributes, fill values, groups) read the way netCDF-C reads it, with the chunk
// manifest from HDF5's chunk index. One open per file, and it works on any HDF5 file id — a local
// file or one opened through open_hdf5_through (HTTP(S), S3), which netCDF-C cannot read here.
#pragma once

#include <hdf5.h>

#include <nlohmann/json.hpp>
#include <string>

#include "source/scan_cache.hpp"

namespace zp {

// The part of one NetCDF-4 file (`group`: "a/b", "" = the root); `path` names it in the part and
// in errors. Throws Error(Source) naming the file (and variable), Error(Config) for a missing
// group.
ScanPart describe_netcdf4(hid_t file, const std::string& path, const std::string& group);

}  // namespace zp
