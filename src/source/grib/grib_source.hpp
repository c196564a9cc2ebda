// The grib engine (engine: grib or cfgrib): GRIB1/GRIB2 files read as xarray's cfgrib engine reads
// them (one file: open_dataset; a glob: open_mfdataset joined along time). The files' messages
// are indexed together, as one stream: a daily series gives one time dimension. Each message is a
// source chunk (its byte range), decoded by the "grib" codec in the workers.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "source/dataset.hpp"
#include "store/store_table.hpp"

namespace zp {

// `filter_by_keys`: cfgrib's backend_kwargs of that name (a JSON object; null: none). The files
// are scanned by a child (`scan-grib`, scan_child.hpp) when this program can start one.
Dataset open_grib(const std::vector<std::string>& files, const std::string& uri,
                  const nlohmann::json& filter_by_keys);

// What `zarr-parallel scan-grib` prints: the files scanned here, as dataset text; a line to
// `progress` after each file (the parent's time limit runs per file).
std::string grib_scan_text(const std::vector<std::string>& files, const std::string& uri,
                           const nlohmann::json& filter_by_keys, std::ostream& progress);

// One GRIB file by URL (HTTP(S), S3), scanned by range through `access` (grib_scan.hpp) in a
// child (`scan-grib --url`, options and secrets on its stdin); workers then read each message's
// byte range. Globs are refused.
Dataset open_grib_url(const std::string& url, const nlohmann::json& filter_by_keys,
                      SourceAccess& access);
// What `zarr-parallel scan-grib --url` prints: the object scanned here, reached with the options
// and secrets of `access_text` (its stdin).
std::string grib_url_scan_text(const std::string& url, const nlohmann::json& filter_by_keys,
                               const std::string& access_text);

// Whether a local data_uri names GRIB: its extension (.grib, .grib2, .grb, .grb2, .grib1) or, for
// a file that exists, its first bytes.
bool looks_like_grib(const std::string& path);

}  // namespace zp
