// NetCDF-4 through HDF5 alone: the netCDF-4 data model (dimensions from dimension scales,
// variables, attributes, fill values, groups) read the way netCDF-C reads it, with the chunk
// manifest from HDF5's chunk index. One open per file, and it works on any HDF5 file id — a local
// file or one opened through open_hdf5_through (HTTP(S), S3), which netCDF-C cannot read here.
#pragma once

#include <hdf5.h>

#include <nlohmann/json.hpp>
#include <string>

#include "source/char_arrays.hpp"
#include "source/scan_cache.hpp"

namespace zp {

// The part of one NetCDF-4 file (`group`: "a/b", "" = the root); `path` names it in the part and
// in errors. Throws Error(Source) naming the file (and variable), Error(Config) for a missing
// group.
ScanPart describe_netcdf4(hid_t file, const std::string& path, const std::string& group);

// Grid and chunk references of a NetCDF-4 variable from HDF5's description of its (open) dataset;
// `where` names it in errors.
void describe_hdf5_storage(hid_t dataset, Variable& v, const std::string& where);

// Shared with the netCDF-C reader (netCDF-3 files):
// element `i` of `data` as JSON; `spelled`: non-finite values as Zarr spells fill values ("NaN").
nlohmann::json number_json(const void* data, std::size_t i, DType t, bool spelled = true);
// netCDF-C's default fill value of type `t` (native order) into `out`, as nc_inq_var_fill reports
// it for a variable without _FillValue.
void default_fill(DType t, unsigned char* out);

}  // namespace zp
