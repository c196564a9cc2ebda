#include "source/fingerprint.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

namespace zp {

std::vector<Fingerprint> source_objects(const Dataset& ds) {
  std::vector<Fingerprint> out;
  std::set<std::string> seen;
  // `data`: a file the chunks name, recorded even when absent or not a regular file (as size -1):
  // the chunk reader reads no file the record lacks.
  auto add = [&](const std::string& p, AccessRole role, bool data = false) {
    if (p.empty()) return;
    if (!data && !is_remote(p)) {
      struct stat st {};
      if (::stat(local_path_of(p).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;  // globs
    }
    if (!seen.insert(p).second) return;
    Fingerprint f;
    f.path = p;
    f.role = role;
    out.push_back(f);
  };
  // A remote Zarr store's URI is a prefix, not an object; a reference set's is its JSON.
  if (!is_remote(ds.uri) || ds.engine == "kerchunk") add(ds.uri, AccessRole::Target);
  // A Zarr store's metadata documents, local or remote (a remote one that is not there is
  // recorded as absent): one that grew (a new shape, a chunk appended) changes them while every
  // chunk read before stays as it was.
  if (ds.engine == "zarr") {
    std::string root = ds.uri;
    while (root.size() > 1 && root.back() == '/') root.pop_back();
    if (!ds.group.empty()) root += "/" + ds.group;
    for (const char* doc : {".zmetadata", ".zgroup", ".zattrs", "zarr.json"})
      add(root + "/" + doc, AccessRole::Target);
    for (const auto& v : ds.variables)
      for (const char* doc : {".zarray", ".zattrs", "zarr.json"})
        add(root + "/" + v.name + "/" + doc, AccessRole::Target);
  }
  for (const auto& f : ds.files) add(f, ds.access.data_role(), true);
  // Every file of a local Zarr store, so that one written later (a chunk that was missing, read
  // as the fill value) is a change: the hit check lists the store again.
  if (ds.engine == "zarr" && !is_remote(ds.uri))
    for (const auto& f : zarr_store_files(ds.uri)) add(f, AccessRole::Target);
  return out;
}

std::vector<std::string> zarr_store_files(const std::string& uri) {
  namespace fs = std::filesystem;
  std::string root = local_path_of(uri);
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    const std::string rel = it->path().lexically_relative(root).generic_string();
    if (rel.rfind(".zarr-parallel", 0) == 0) {  // our own records, never the source's
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec)) out.push_back(join_location(root, rel));
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<Fingerprint> take_fingerprints(const std::vector<Fingerprint>& objects,
                                           SourceAccess& access) {
  std::vector<Fingerprint> out(objects.size());
  // Grouped by backend and role, so each remote group is one concurrent batch.
  std::map<std::pair<Backend, AccessRole>, std::vector<std::size_t>> groups;
  for (std::size_t i = 0; i < objects.size(); ++i)
    groups[{backend_of(objects[i].path), objects[i].role}].push_back(i);
  for (const auto& [key, idx] : groups) {
    std::vector<std::string> locations;
    for (auto i : idx)
      locations.push_back(key.first == Backend::File ? local_path_of(objects[i].path)
                                                     : objects[i].path);
    const auto infos = access.reader(objects[idx[0]].path, key.second).info_many(locations);
    for (std::size_t k = 0; k < idx.size(); ++k) {
      Fingerprint& f = out[idx[k]];
      f.path = objects[idx[k]].path;
      f.role = objects[idx[k]].role;
      if (!infos[k].exists) continue;
      f.size = static_cast<int64_t>(infos[k].size);
      f.mtime_ns = infos[k].mtime_ns;
      f.etag = infos[k].etag;
    }
  }
  return out;
}

Fingerprint fingerprint_of(const Fingerprint& object, SourceAccess& access) {
  return take_fingerprints({object}, access)[0];
}

std::string describe_change(const Fingerprint& was, const Fingerprint& now) {
  if (now.size < 0) return was.path + " is gone";
  if (was.size != now.size)
    return fmt::format("{} changed size ({} → {} bytes)", was.path, was.size, now.size);
  if (was.etag != now.etag)
    return fmt::format("{} was replaced (ETag {} → {})", was.path, was.etag, now.etag);
  return fmt::format("{} was modified (mtime {:.3f} → {:.3f})", was.path,
                     static_cast<double>(was.mtime_ns) / 1e9,
                     static_cast<double>(now.mtime_ns) / 1e9);
}

std::string first_change(const std::vector<Fingerprint>& recorded, SourceAccess& access) {
  const auto now = take_fingerprints(recorded, access);
  for (std::size_t i = 0; i < recorded.size(); ++i)
    if (!(now[i] == recorded[i])) return describe_change(recorded[i], now[i]);
  return "";
}

nlohmann::json fingerprints_json(const std::vector<Fingerprint>& f) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& x : f) {
    if (!is_remote(x.path)) {
      out.push_back({x.path, x.size, x.mtime_ns});
      continue;
    }
    out.push_back({x.path, x.size, x.etag, x.role == AccessRole::Remote ? "remote" : "target"});
  }
  return out;
}

std::vector<Fingerprint> fingerprints_from(const nlohmann::json& j) {
  std::vector<Fingerprint> out;
  if (!j.is_array()) return out;
  for (const auto& x : j) {
    if (!x.is_array() || x.size() < 3 || !x[0].is_string() || !x[1].is_number_integer()) continue;
    Fingerprint f;
    f.path = x[0].get<std::string>();
    f.size = x[1].get<int64_t>();
    if (x.size() == 3 && x[2].is_number_integer()) {
      f.mtime_ns = x[2].get<int64_t>();
    } else if (x.size() == 4 && x[2].is_string() && x[3].is_string()) {
      f.etag = x[2].get<std::string>();
      f.role = x[3] == "remote" ? AccessRole::Remote : AccessRole::Target;
    } else {
      continue;
    }
    out.push_back(f);
  }
  return out;
}

}  // namespace zp
