#include "exec/make_refs.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "core/json_nonfinite.hpp"
#include "source/grib/grib_source.hpp"
#include "source/kerchunk/reference_writer.hpp"
#include "source/netcdf_source.hpp"
#include "source/open_source.hpp"
#include "store/file_store.hpp"
#include "store/store_table.hpp"

namespace zp {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Refuses to replace a file that is not a reference set of ours.
void check_replaceable(const std::string& out) {
  std::error_code ec;
  if (!fs::exists(out, ec)) return;
  if (!fs::is_regular_file(out, ec))
    throw Error::store(out, "exists and is not a file; choose another -o");
  std::ifstream in(out, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const json j = json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("zarr_parallel"))
    throw Error::store(out,
                       "exists and is not a reference set zarr-parallel wrote; it is left as it "
                       "is: choose another -o");
}

}  // namespace

json make_refs(const RefsRequest& r) {
  if (r.sources.empty()) throw Error::config("SOURCE", "give at least one source");
  if (r.out.empty()) throw Error::config("-o", "give the output file");
  check_replaceable(r.out);
  Dataset ds;
  const std::string engine = resolve_engine(r.sources[0], r.engine);
  if (engine == "netcdf" || engine == "grib") {
    std::vector<std::string> files;
    for (const auto& s : r.sources) {
      if (is_remote(s))
        throw Error::source(s, (engine == "grib" ? "GRIB" : "NetCDF") +
                                   std::string(" files are read from a file system only"));
      for (auto& f : expand_glob(local_path_of(s))) files.push_back(f);
    }
    std::sort(files.begin(), files.end());
    files.erase(std::unique(files.begin(), files.end()), files.end());
    // GRIB: kerchunk's grib2 layout, a reference per message read by its "grib" codec.
    ds = engine == "grib" ? open_grib(files, r.sources[0], nullptr)
                          : open_netcdf(files, r.concat_dim, r.sources[0], r.group);
  } else {
    if (r.sources.size() != 1)
      throw Error::config("SOURCE", "a " + engine + " source is one store or reference set");
    AccessOptions access = r.access;
    access.scope_to(r.sources[0]);  // what a remote store names stays off local addresses
    ds = open_source(r.sources[0], engine, r.concat_dim, r.group, access);
  }
  if (!ds.unsupported.empty())
    throw Error::source(r.sources[0], "variable '" + ds.unsupported[0].first + "' is " +
                                          ds.unsupported[0].second +
                                          ": a reference set cannot hold it yet");
  RefsOptions opt;
  opt.inline_threshold = r.inline_threshold;
  opt.relative = r.relative;
  opt.out_dir = fs::absolute(r.out).parent_path().string();
  const auto doc = reference_set_of(ds, opt);
  // Written beside the target, flushed, then renamed over it: never half a file, also after a
  // crash.
  const fs::path out = fs::absolute(r.out);
  std::error_code ec;
  if (!fs::is_directory(out.parent_path(), ec))  // a mistyped path makes no folders
    throw Error::store(r.out, "its folder " + out.parent_path().string() + " does not exist");
  const FileStore folder(out.parent_path().string());
  folder.put(out.filename().string(), doc.dump());
  folder.sync_folders({""});
  int64_t chunks = 0, inlined = 0;
  for (const auto& [k, v] : doc["refs"].items()) {
    if (k.find("/.z") != std::string::npos || k.rfind(".z", 0) == 0) continue;
    ++chunks;
    inlined += v.is_string();
  }
  return {{"variables", ds.variables.size()},
          {"files", ds.files.size()},
          {"chunks", chunks},
          {"inline", inlined}};
}

}  // namespace zp
