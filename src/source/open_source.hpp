// Opens a data_uri with an engine ("auto", "netcdf", "kerchunk", "zarr") into a Dataset.
#pragma once

#include <string>
#include <vector>

#include "source/dataset.hpp"
#include "store/storage_options.hpp"

namespace zp {

// "auto": .json → kerchunk; a folder or *.zarr → zarr; a GRIB extension or signature → grib;
// anything else → netcdf. "cfgrib" is "grib".
std::string resolve_engine(const std::string& uri, const std::string& engine);
// Sorted files matching a glob; an Error(Source) when none match.
std::vector<std::string> expand_glob(const std::string& pattern);
// `group`: a NetCDF-4 group or Zarr subgroup path, as xarray's open_dataset(group=...).
// `filter_by_keys`: cfgrib's, for GRIB sources (a JSON object; null: none).
Dataset open_source(const std::string& uri, const std::string& engine,
                    const std::string& concat_dim, const std::string& group = "",
                    const AccessOptions& access = {},
                    const nlohmann::json& filter_by_keys = nullptr);

}  // namespace zp
