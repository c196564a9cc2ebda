#include "source/scan_cache.hpp"

#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/hash.hpp"
#include "core/text_codec.hpp"
#include "source/dataset_json.hpp"

namespace zp {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

std::string scan_cache_dir();

namespace {

struct FileState {
  bool ok = false;
  int64_t size = 0, mtime_ns = 0;
};

FileState state_of(const std::string& path) {
  FileState s;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return s;
  s.ok = true;
  s.size = static_cast<int64_t>(st.st_size);
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return s;
}

// The program doing the scan, as built: parts from another build (whose scanner may differ) are
// never used. The binary or library holding this code, by path, size and mtime.
const std::string& build_identity() {
  static const std::string id = [] {
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void*>(&scan_cache_dir), &info) == 0 || !info.dli_fname)
      return std::string(ZP_VERSION);
    const FileState s = state_of(info.dli_fname);
    return std::string(ZP_VERSION) + ":" + info.dli_fname + ":" + std::to_string(s.size) + ":" +
           std::to_string(s.mtime_ns);
  }();
  return id;
}

std::string entry_path(const std::string& dir, const std::string& abs, const std::string& group) {
  return dir + "/" + sha256_hex(abs + '\n' + group + '\n' + build_identity()) + ".json";
}

std::string& executable() {
  static std::string exe;
  return exe;
}

}  // namespace

std::pair<int64_t, int64_t> file_state(const std::string& path) {
  const FileState s = state_of(path);
  return s.ok ? std::make_pair(s.size, s.mtime_ns) : std::make_pair(int64_t{-1}, int64_t{0});
}

std::string scan_cache_dir() {
  const char* env = std::getenv("ZP_CACHE_DIR");
  std::string base;
  if (env && *env) {
    if (std::strcmp(env, "off") == 0 || std::strcmp(env, "0") == 0) return "";
    base = env;
  } else if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    base = std::string(xdg) + "/zarr-parallel";
  } else if (const char* home = std::getenv("HOME"); home && *home) {
    base = std::string(home) + "/.cache/zarr-parallel";
  } else {
    return "";
  }
  return base + "/parts";
}

std::optional<ScanPart> cached_part(const std::string& path, const std::string& group) {
  const std::string dir = scan_cache_dir();
  if (dir.empty()) return std::nullopt;
  const std::string abs = fs::absolute(path).lexically_normal().string();
  const FileState now = state_of(abs);
  if (!now.ok) return std::nullopt;
  std::ifstream in(entry_path(dir, abs, group), std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    const std::string text = ss.str();
    const auto header_end = text.find('\n');
    if (header_end == std::string::npos) return std::nullopt;
    const ojson header = ojson::parse(text.substr(0, header_end));
    if (header.at("path") != abs || header.at("size") != now.size ||
        header.at("mtime_ns") != now.mtime_ns || header.at("group") != group ||
        header.at("version") != build_identity())
      return std::nullopt;  // the file changed (or a hash collision): scan it again
    ScanPart part;
    part.ds = dataset_from_text(text.substr(header_end + 1), path);
    // Named as this caller spells the file (relative or absolute), as a fresh scan would.
    const std::string as = header.at("as");
    part.ds.files = {path};
    for (auto& v : part.ds.variables)
      if (v.origin == as) v.origin = path;
    for (const auto& [name, b64] : header.at("coords").items()) {
      const Bytes raw = decode_base64(b64.get<std::string>(), path);
      std::vector<double> values(raw.size() / sizeof(double));
      std::memcpy(values.data(), raw.data(), values.size() * sizeof(double));
      part.coord_values[name] = std::move(values);
    }
    return part;
  } catch (const std::exception&) {
    return std::nullopt;  // an unreadable entry is a miss, never an error
  }
}

void store_part(const std::string& path, const std::string& group, const ScanPart& part,
                std::pair<int64_t, int64_t> before) {
  const std::string dir = scan_cache_dir();
  if (dir.empty()) return;
  const std::string abs = fs::absolute(path).lexically_normal().string();
  const FileState was = state_of(abs);
  if (!was.ok || was.size != before.first || was.mtime_ns != before.second) return;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return;  // a cache that cannot be written is no cache, not an error
  ojson coords = ojson::object();
  for (const auto& [name, values] : part.coord_values) {
    Bytes raw(values.size() * sizeof(double));
    std::memcpy(raw.data(), values.data(), raw.size());
    coords[name] = encode_base64(raw);
  }
  const ojson header = {{"path", abs},
                        {"as", path},
                        {"group", group},
                        {"size", was.size},
                        {"mtime_ns", was.mtime_ns},
                        {"version", build_identity()},
                        {"coords", coords}};
  const std::string target = entry_path(dir, abs, group);
  const std::string tmp = target + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << header.dump() << '\n' << dataset_text(part.ds);
    if (!out.flush()) {
      fs::remove(tmp, ec);
      return;
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) fs::remove(tmp, ec);
}

std::string join_key(const std::vector<std::string>& files, const std::string& group,
                     const std::string& concat_dim) {
  if (scan_cache_dir().empty()) return "";
  std::string text = "join\n" + group + '\n' + concat_dim + '\n' + build_identity() + '\n';
  for (const auto& f : files) {
    const std::string abs = fs::absolute(f).lexically_normal().string();
    const FileState s = state_of(abs);
    if (!s.ok) return "";
    text +=
        f + '\0' + abs + '\0' + std::to_string(s.size) + ':' + std::to_string(s.mtime_ns) + '\n';
  }
  return sha256_hex(text);
}

std::optional<Dataset> cached_join(const std::vector<std::string>& files, const std::string& group,
                                   const std::string& concat_dim) {
  const std::string key = join_key(files, group, concat_dim);
  if (key.empty()) return std::nullopt;
  std::ifstream in(scan_cache_dir() + "/join-" + key + ".json", std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    Dataset ds = dataset_from_text(ss.str(), files.empty() ? "" : files[0]);
    if (ds.files != files) return std::nullopt;
    return ds;
  } catch (const std::exception&) {
    return std::nullopt;  // an unreadable entry is a miss, never an error
  }
}

void store_join(const std::string& key_before, const std::vector<std::string>& files,
                const std::string& group, const std::string& concat_dim, const Dataset& ds) {
  if (key_before.empty() || join_key(files, group, concat_dim) != key_before) return;
  const std::string dir = scan_cache_dir();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return;
  const std::string target = dir + "/join-" + key_before + ".json";
  const std::string tmp = target + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << dataset_text(ds);
    if (!out.flush()) {
      fs::remove(tmp, ec);
      return;
    }
  }
  fs::rename(tmp, target, ec);
  if (ec) fs::remove(tmp, ec);
}

void set_scan_executable(const std::string& path) {
  executable() = path;
}
const std::string& scan_executable() {
  return executable();
}

}  // namespace zp
