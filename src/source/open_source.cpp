#include "source/open_source.hpp"

#include <glob.h>

#include <algorithm>
#include <filesystem>

#include "core/error.hpp"
#include "source/grib/grib_source.hpp"
#include "source/kerchunk_source.hpp"
#include "source/netcdf_source.hpp"

namespace zp {

namespace fs = std::filesystem;

namespace {

// A GRIB extension on the pattern, else the GRIB signature of the first file it matches.
bool first_file_is_grib(const std::string& pattern) {
  if (looks_like_grib(pattern)) return true;
  glob_t g{};
  const bool grib = ::glob(pattern.c_str(), 0, nullptr, &g) == 0 && g.gl_pathc > 0 &&
                    looks_like_grib(g.gl_pathv[0]);
  globfree(&g);
  return grib;
}

}  // namespace

std::string resolve_engine(const std::string& uri, const std::string& engine) {
  if (engine == "netcdf" || engine == "kerchunk" || engine == "zarr" || engine == "grib")
    return engine;
  if (engine == "cfgrib") return "grib";  // xarray's name for it
  if (engine != "auto" && !engine.empty())
    throw Error::config("engine",
                        "unknown engine '" + engine + "' (auto, netcdf, kerchunk, zarr, grib)");
  auto ends_with = [&](const std::string& s) {
    return uri.size() >= s.size() && uri.compare(uri.size() - s.size(), s.size(), s) == 0;
  };
  std::string trimmed = uri;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  if (ends_with(".json")) return "kerchunk";
  if (trimmed.ends_with(".zarr")) return "zarr";
  if (is_remote(uri)) return uri.back() == '/' ? "zarr" : "netcdf";
  std::error_code ec;
  if (fs::is_directory(local_path_of(trimmed), ec)) return "zarr";
  return first_file_is_grib(local_path_of(uri)) ? "grib" : "netcdf";
}

std::vector<std::string> expand_glob(const std::string& pattern) {
  glob_t g{};
  const int rc = ::glob(pattern.c_str(), GLOB_NOSORT, nullptr, &g);
  std::vector<std::string> out;
  if (rc == 0)
    for (std::size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  globfree(&g);
  if (out.empty()) throw Error::source_missing(pattern, "no file matches data_uri");
  std::sort(out.begin(), out.end());
  return out;
}

Dataset open_source(const std::string& uri, const std::string& engine_in,
                    const std::string& concat_dim, const std::string& group,
                    const AccessOptions& access_options, const nlohmann::json& filter_by_keys) {
  backend_of(uri);  // refuses unknown URL schemes before anything else
  const std::string engine = resolve_engine(uri, engine_in);
  SourceAccess access(access_options);
  if (engine == "kerchunk")
    return dataset_from_references(load_kerchunk(uri, access), uri, engine, group, &access);
  if (engine == "zarr")
    return dataset_from_references(load_zarr_store(uri, access), uri, engine, group, &access);
  if (engine == "grib") {
    if (is_remote(uri))
      throw Error::config("data_uri",
                          "GRIB files are read from local paths only (not " + uri + ")");
    if (!group.empty()) throw Error::config("group", "GRIB files have no groups");
    return open_grib(expand_glob(local_path_of(uri)), uri, filter_by_keys);
  }
  if (!filter_by_keys.is_null() && !filter_by_keys.empty())
    throw Error::config("filter_by_keys", "only GRIB sources (engine grib) take filter_by_keys");
  if (is_remote(uri)) return open_netcdf_url(uri, group, access);
  return open_netcdf(expand_glob(local_path_of(uri)), concat_dim, uri, group);
}

}  // namespace zp
