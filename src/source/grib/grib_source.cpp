#include "source/grib/grib_source.hpp"

#include <algorithm>
#include <cctype>

#include "core/error.hpp"
#include "source/dataset_json.hpp"
#include "source/grib/grib_dataset.hpp"
#include "source/grib/grib_scan.hpp"
#include "source/scan_cache.hpp"
#include "source/scan_child.hpp"
#include "store/secrets_channel.hpp"

namespace zp {

namespace {

// The files scanned in this process; `progress` (the child's stderr) hears of each file done.
Dataset open_grib_here(const std::vector<std::string>& files, const std::string& uri,
                       const nlohmann::json& filter_by_keys, std::ostream* progress) {
  GribScan scan;
  for (std::size_t i = 0; i < files.size(); ++i) {
    scan_grib_file(files[i], static_cast<uint32_t>(i), filter_by_keys, scan);
    if (progress) *progress << "zarr-parallel: scanned " << i + 1 << " files\n" << std::flush;
  }
  return grib_dataset(scan, filter_by_keys, files.size() == 1 ? files[0] : uri);
}

void check_request(const std::vector<std::string>& files, const std::string& uri,
                   const nlohmann::json& filter_by_keys) {
  if (files.empty()) throw Error::source_missing(uri, "no file matches data_uri");
  if (!filter_by_keys.is_null() && !filter_by_keys.is_object())
    throw Error::config("filter_by_keys", "a mapping of GRIB keys to values");
}

}  // namespace

Dataset open_grib(const std::vector<std::string>& files, const std::string& uri,
                  const nlohmann::json& filter_by_keys) {
  check_request(files, uri, filter_by_keys);
  // ecCodes asserts (abort) on some malformed messages: in a child, where that names the file
  // and message instead of ending this process. In-process only where no child can run.
  Dataset ds = scan_executable().empty()
                   ? open_grib_here(files, uri, filter_by_keys, nullptr)
                   : dataset_from_text(describe_grib_in_child(files, filter_by_keys.dump(), uri),
                                       files.size() == 1 ? files[0] : uri);
  ds.uri = uri;
  ds.files = files;
  return ds;
}

std::string grib_scan_text(const std::vector<std::string>& files, const std::string& uri,
                           const nlohmann::json& filter_by_keys, std::ostream& progress) {
  check_request(files, uri, filter_by_keys);
  Dataset ds = open_grib_here(files, uri, filter_by_keys, &progress);
  ds.uri = uri;
  ds.files = files;
  return dataset_text(ds);
}

namespace {

// The object at `url` scanned here, through the store interface (the child of open_grib_url).
Dataset open_grib_url_here(const std::string& url, const nlohmann::json& filter_by_keys,
                           SourceAccess& access) {
  Readable& reader = access.reader(url, AccessRole::Target);
  const ObjectInfo info = reader.info(url);
  if (!info.exists) throw Error::source_missing(url, "no such object");
  GribScan scan;
  scan_grib_object(reader, url, info.size, 0, filter_by_keys, scan);
  Dataset ds = grib_dataset(scan, filter_by_keys, url);
  ds.uri = url;
  ds.files = {url};
  return ds;
}

}  // namespace

Dataset open_grib_url(const std::string& url, const nlohmann::json& filter_by_keys,
                      SourceAccess& access) {
  if (url.substr(0, url.find('?')).find_first_of("*[") != std::string::npos)  // '?': a query
    throw Error::source(url, "globs are not expanded in URLs: give one GRIB file");
  check_request({url}, url, filter_by_keys);
  Dataset ds = scan_executable().empty()
                   ? open_grib_url_here(url, filter_by_keys, access)
                   : dataset_from_text(describe_grib_url_in_child(url, filter_by_keys.dump(),
                                                                  access.options().transfer_text()),
                                       url);
  ds.uri = url;
  ds.files = {url};
  ds.access = access.options();
  ds.access.chunks_remote_role = false;
  return ds;
}

std::string grib_url_scan_text(const std::string& url, const nlohmann::json& filter_by_keys,
                               const std::string& access_text) {
  const AccessOptions options = AccessOptions::from_transfer_text(access_text);
  guard_secrets(options);
  SourceAccess access(options);
  return dataset_text(open_grib_url_here(url, filter_by_keys, access));
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
