#include "source/open_source.hpp"

#include <glob.h>

#include <algorithm>
#include <filesystem>

#include "core/error.hpp"
#include "source/format.hpp"
#include "source/grib/grib_source.hpp"
#include "source/kerchunk/kerchunk_source.hpp"
#include "source/netcdf_source.hpp"
#include "source/zarr/zarr_listing.hpp"
#include "source/zarr/zarr_source.hpp"

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

Dataset open_netcdf_engine(const SourceRequest& r) {
  if (is_remote(r.uri)) return open_netcdf_url(r.uri, r.group, r.access);
  return open_netcdf(expand_glob(local_path_of(r.uri)), r.concat_dim, r.uri, r.group);
}

Dataset open_kerchunk_engine(const SourceRequest& r) {
  return dataset_from_references(load_kerchunk(r.uri, r.access), r.uri, r.engine, r.group,
                                 &r.access);
}

// GRIB: the files of a local glob indexed together, as cfgrib reads them, or one file by URL
// (grib/grib_source.hpp).
Dataset open_grib_engine(const SourceRequest& r) {
  if (!r.group.empty()) throw Error::config("group", "GRIB files have no groups");
  if (is_remote(r.uri)) return open_grib_url(r.uri, r.filter_by_keys, r.access);
  return open_grib(expand_glob(local_path_of(r.uri)), r.uri, r.filter_by_keys);
}

Dataset open_zarr_engine(const SourceRequest& r) {
  return dataset_from_references(load_zarr_store(r.uri, r.access), r.uri, r.engine, r.group,
                                 &r.access);
}

// The engines, in the order the error for an unknown one lists them.
const std::vector<SourceEngine>& engines() {
  static const std::vector<SourceEngine> all = {{"netcdf", open_netcdf_engine},
                                                {"kerchunk", open_kerchunk_engine},
                                                {"zarr", open_zarr_engine},
                                                {"grib", open_grib_engine}};
  return all;
}

const SourceEngine* engine_named(const std::string& name) {
  for (const auto& e : engines())
    if (name == e.name) return &e;
  return nullptr;
}

}  // namespace

std::string resolve_engine(const std::string& uri, const std::string& engine) {
  if (engine_named(engine)) return engine;
  if (engine == "cfgrib") return "grib";  // xarray's name for it
  if (engine != "auto" && !engine.empty()) {
    std::string names = "auto";
    for (const auto& e : engines()) names += std::string(", ") + e.name;
    throw Error::config("engine", "unknown engine '" + engine + "' (" + names + ")");
  }
  auto ends_with = [&](const std::string& s) {
    return uri.size() >= s.size() && uri.compare(uri.size() - s.size(), s.size(), s) == 0;
  };
  std::string trimmed = uri;
  while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
  if (ends_with(".json")) return "kerchunk";
  if (trimmed.ends_with(".zarr")) return "zarr";
  if (is_remote(uri) && uri.back() == '/') return "zarr";
  if (is_remote(uri)) return looks_like_grib(uri.substr(0, uri.find('?'))) ? "grib" : "netcdf";
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
  if (engine != "grib" && !filter_by_keys.is_null() && !filter_by_keys.empty())
    throw Error::config("filter_by_keys", "only GRIB sources (engine grib) take filter_by_keys");
  return engine_named(engine)->open({uri, engine, concat_dim, group, access, filter_by_keys});
}

}  // namespace zp
