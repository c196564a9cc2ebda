// The grib engine (engine: grib or cfgrib): GRIB1/GRIB2 files read as xarray's cfgrib engine reads
// them (one file: open_dataset; a glob: open_mfdataset joined along time). The files' messages
// are indexed together, as one stream: a daily series gives one time dimension. Each message is a
// source chunk (its byte range), decoded by the "grib" codec in the workers.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "source/dataset.hpp"

namespace zp {

// `filter_by_keys`: cfgrib's backend_kwargs of that name (a JSON object; null: none).
Dataset open_grib(const std::vector<std::string>& files, const std::string& uri,
                  const nlohmann::json& filter_by_keys);

// Whether a local data_uri names GRIB: its extension (.grib, .grib2, .grb, .grb2, .grib1) or, for
// a file that exists, its first bytes.
bool looks_like_grib(const std::string& path);

}  // namespace zp
