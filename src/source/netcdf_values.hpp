// Values as netCDF gives them, shared by the NetCDF-4 and NetCDF-3 describers: numbers as JSON
// (attributes, fill values) and netCDF-C's default fill values.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>

#include "core/dtype.hpp"

namespace zp {

// Element `i` of `data` as JSON; `spelled`: non-finite values as Zarr spells fill values ("NaN").
nlohmann::json number_json(const void* data, std::size_t i, DType t, bool spelled = true);
// netCDF-C's default fill value of type `t` (native order) into `out`, as nc_inq_var_fill reports
// it for a variable without _FillValue.
void default_fill(DType t, unsigned char* out);

}  // namespace zp
