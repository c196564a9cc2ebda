#include "source/fingerprint.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <set>

namespace zp {

Fingerprint fingerprint_of(const std::string& path) {
  Fingerprint f{path, -1, 0};
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    f.size = static_cast<int64_t>(st.st_size);
    f.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  }
  return f;
}

std::vector<std::string> source_paths(const Dataset& ds) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& p) {
    if (p.empty() || p.find("://") != std::string::npos) return;
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;  // globs, folders
    if (seen.insert(p).second) out.push_back(p);
  };
  add(ds.uri);
  for (const auto& f : ds.files) add(f);
  return out;
}

std::vector<Fingerprint> take_fingerprints(const std::vector<std::string>& paths) {
  std::vector<Fingerprint> out;
  out.reserve(paths.size());
  for (const auto& p : paths) out.push_back(fingerprint_of(p));
  return out;
}

std::string describe_change(const Fingerprint& was, const Fingerprint& now) {
  if (now.size < 0) return was.path + " is gone";
  if (was.size != now.size)
    return fmt::format("{} changed size ({} → {} bytes)", was.path, was.size, now.size);
  return fmt::format("{} was modified (mtime {:.3f} → {:.3f})", was.path,
                     static_cast<double>(was.mtime_ns) / 1e9,
                     static_cast<double>(now.mtime_ns) / 1e9);
}

std::string first_change(const std::vector<Fingerprint>& recorded) {
  for (const auto& f : recorded) {
    const Fingerprint now = fingerprint_of(f.path);
    if (!(now == f)) return describe_change(f, now);
  }
  return "";
}

nlohmann::json fingerprints_json(const std::vector<Fingerprint>& f) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& x : f) out.push_back({x.path, x.size, x.mtime_ns});
  return out;
}

std::vector<Fingerprint> fingerprints_from(const nlohmann::json& j) {
  std::vector<Fingerprint> out;
  if (!j.is_array()) return out;
  for (const auto& x : j)
    if (x.is_array() && x.size() == 3 && x[0].is_string() && x[1].is_number_integer() &&
        x[2].is_number_integer())
      out.push_back({x[0].get<std::string>(), x[1].get<int64_t>(), x[2].get<int64_t>()});
  return out;
}

}  // namespace zp
