#include "source/grib/grib_source.hpp"

#include <algorithm>
#include <cctype>

#include "core/error.hpp"
#include "source/grib/grib_dataset.hpp"
#include "source/grib/grib_scan.hpp"

namespace zp {

Dataset open_grib(const std::vector<std::string>& files, const std::string& uri,
                  const nlohmann::json& filter_by_keys) {
  if (files.empty()) throw Error::source_missing(uri, "no file matches data_uri");
  if (!filter_by_keys.is_null() && !filter_by_keys.is_object())
    throw Error::config("filter_by_keys", "a mapping of GRIB keys to values");
  GribScan scan;
  for (std::size_t i = 0; i < files.size(); ++i)
    scan_grib_file(files[i], static_cast<uint32_t>(i), filter_by_keys, scan);
  Dataset ds = grib_dataset(scan, filter_by_keys, files.size() == 1 ? files[0] : uri);
  ds.uri = uri;
  ds.files = files;
  return ds;
}

bool looks_like_grib(const std::string& path) {
  std::string lower = path;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  for (const char* ext : {".grib", ".grib1", ".grib2", ".grb", ".grb1", ".grb2"})
    if (lower.ends_with(ext)) return true;
  return is_grib_file(path);
}

}  // namespace zp
