#include "source/scan_cache.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <optional>
#include <random>

#include "core/console.hpp"
#include "core/hash.hpp"
#include "core/text_codec.hpp"
#include "source/cache_key.hpp"
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

std::string absolute_of(const std::string& path) {
  return fs::absolute(path).lexically_normal().string();
}

std::atomic<int> g_log_level{1};
std::atomic<bool> g_disabled{false};

// Largest entry read: far above the joined dataset of 20 years of daily files.
constexpr off_t kMaxEntryBytes = off_t{1} << 30;

// What every entry starts with: the scanner that wrote it, the payload's size with an HMAC of
// the entry's name and that size (checked before the payload is read: a planted large or sparse
// file costs a page, not its size), and an HMAC of the name and the rest, with this user's key
// (cache_key.hpp), so that a damaged, edited, forged or renamed entry (a shared cache folder is
// anyone's to write) is never used. "" without a key.
std::string size_text(const std::string& path, uint64_t bytes) {
  return fs::path(path).filename().string() + "\nbytes " + std::to_string(bytes);
}

std::string entry_head(const std::string& path, const std::string& payload) {
  const auto key = manifest_cache_key("", nullptr);
  if (!key) return "";
  const std::string name = fs::path(path).filename().string();
  return ojson{{"zp_entry", 3},
               {"scanner", build_identity()},
               {"bytes", payload.size()},
               {"size_hmac", hmac_sha256_hex(*key, size_text(path, payload.size()))},
               {"hmac", hmac_sha256_hex(*key, name + '\n' + payload)}}
             .dump() +
         '\n';
}

// Writes `text` to `target` through a new temporary file (O_EXCL | O_NOFOLLOW, a random name: a
// link planted at a predictable name is never followed); a cache that cannot be written is no
// cache.
void write_entry(const std::string& target, const std::string& text) {
  std::error_code ec;
  fs::create_directories(fs::path(target).parent_path(), ec);
  if (ec) return;
  std::random_device rd;
  const std::string tmp = target + fmt::format(".tmp.{:08x}{:08x}", rd(), rd());
  const std::string head = entry_head(target, text);
  if (head.empty()) return;
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) return;
  const std::string all = head + text;
  bool ok = true;
  for (std::size_t done = 0; ok && done < all.size();) {
    const ssize_t n = ::write(fd, all.data() + done, all.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  if (::close(fd) != 0 || !ok || ::rename(tmp.c_str(), target.c_str()) != 0) ::unlink(tmp.c_str());
}

void note_bad_entry(const std::string& path, const std::string& why) {
  if (g_log_level >= 2)
    say(stderr, fmt::format("zarr-parallel: manifest cache entry {} {}: ignored, scanning again\n",
                            path, why));
}

// Largest head line read; ours are about 300 bytes.
constexpr std::size_t kMaxHeadBytes = 4096;

// Appends to `text` what `fd` has, until it holds `max` bytes or the file ends.
void read_upto(int fd, std::string& text, std::size_t max) {
  char buf[65536];
  while (text.size() < max) {
    const ssize_t n = ::read(fd, buf, std::min(sizeof buf, max - text.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.append(buf, static_cast<std::size_t>(n));
  }
}

// The payload size an entry's head line promises, when the head's size HMAC is this user's.
std::optional<uint64_t> promised_size(const std::string& path, const std::string& line) {
  const auto key = manifest_cache_key("", nullptr);
  const ojson h = ojson::parse(line, nullptr, false);
  if (!key || !h.is_object()) return std::nullopt;
  const auto bytes = h.find("bytes"), mac = h.find("size_hmac");
  if (bytes == h.end() || !bytes->is_number_unsigned() || mac == h.end() || !mac->is_string())
    return std::nullopt;
  const uint64_t n = bytes->get<uint64_t>();
  if (n > static_cast<uint64_t>(kMaxEntryBytes) ||
      mac->get<std::string>() != hmac_sha256_hex(*key, size_text(path, n)))
    return std::nullopt;
  return n;
}

// The payload of the open entry `fd` at `path`: none when not a regular file, from another
// scanner, not of the size its head says or not matching its checksum. The payload is read only
// once the head's size HMAC holds, and no more of it than that size.
std::optional<std::string> read_verified(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  std::string text;
  read_upto(fd, text, kMaxHeadBytes);
  const auto eol = text.find('\n');
  if (eol == std::string::npos) return note_bad_entry(path, "has no head line"), std::nullopt;
  const auto n = promised_size(path, text.substr(0, eol));
  const uint64_t whole = eol + 1 + n.value_or(0);
  if (!n || static_cast<uint64_t>(st.st_size) != whole)
    return note_bad_entry(path,
                          "does not match its checksum (a head not signed with this user's key, or "
                          "a file of another size than its head says)"),
           std::nullopt;
  read_upto(fd, text, whole + 1);  // one byte more: a file that grew meanwhile is refused
  if (text.size() != whole) return note_bad_entry(path, "changed while read"), std::nullopt;
  std::string payload = text.substr(eol + 1);
  const std::string head = entry_head(path, payload);
  if (head.empty() || text.compare(0, eol + 1, head) != 0) {
    note_bad_entry(path,
                   "does not match its checksum (an HMAC with this user's key: edited, forged, "
                   "another user's or another build's)");
    return std::nullopt;
  }
  return payload;
}

std::optional<std::string> read_entry(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  auto payload = read_verified(fd, path);
  ::close(fd);
  return payload;
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

void set_scan_cache_log_level(int level) {
  g_log_level = level;
}

void bypass_scan_cache() {
  g_disabled = true;
  ::setenv("ZP_CACHE_DIR", "off", 1);  // the scan's children too
}

namespace {

// ZP_CACHE_DIR or the default folder; "" when off.
std::string cache_base() {
  if (g_disabled) return "";
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
  return base;
}

}  // namespace

std::string scan_cache_dir() {
  const std::string base = cache_base();
  if (base.empty()) return "";
  std::string why;
  if (!manifest_cache_key(base, &why)) {  // no key to sign or check entries with: no cache
    static std::once_flag once;
    std::call_once(once, [&] {
      if (g_log_level >= 2)
        say(stderr, "zarr-parallel: manifest cache off: no key of this user's (" + why + ")\n");
    });
    return "";
  }
  return base + "/parts";
}

namespace {

// The three lines of a part: a small header (read for every entry), the coordinates (read for the
// join check) and the dataset (read when the part is used).
std::string header_line(const std::string& path, std::pair<int64_t, int64_t> state) {
  return ojson{
      {"path", absolute_of(path)}, {"as", path}, {"size", state.first}, {"mtime_ns", state.second}}
      .dump();
}

// {"digests": {name: sha256}, "values": {name: base64}}
std::string coords_line(const ScanPart& part) {
  ojson digests = ojson::object(), values = ojson::object();
  for (const auto& [name, digest] : part.coord_digests) digests[name] = digest;
  for (const auto& [name, v] : part.join_values) values[name] = encode_base64(v);
  return ojson{{"digests", std::move(digests)}, {"values", std::move(values)}}.dump();
}

}  // namespace

std::string part_lines(const std::string& path, const ScanPart& part,
                       std::pair<int64_t, int64_t> state) {
  return header_line(path, state) + '\n' + coords_line(part) + '\n' + dataset_text(part.ds) + '\n';
}

PartCache::PartCache(const std::string& uri, const std::string& group) : group_(group) {
  const std::string dir = scan_cache_dir();
  if (dir.empty()) return;
  entry_ = dir + "/source-" +
           sha256_hex("source\n" + absolute_of(uri) + '\n' + group + '\n' + build_identity()) +
           ".jsonl";
  const auto text = read_entry(entry_);
  if (!text) return;
  const auto first = text->find('\n');
  try {
    const ojson head = ojson::parse(text->substr(0, first));
    if (head.at("version") != build_identity() || head.at("group") != group) return;
  } catch (const std::exception&) {
    return;  // an unreadable entry is a miss, never an error
  }
  put_lines(text->substr(first + 1));
  dirty_ = false;
}

bool PartCache::put_lines(const std::string& text) {
  std::size_t at = 0;
  while (at < text.size()) {
    const auto h_end = text.find('\n', at);
    if (h_end == std::string::npos) return false;
    const auto c_end = text.find('\n', h_end + 1);
    if (c_end == std::string::npos) return false;
    const auto b_end = text.find('\n', c_end + 1);
    if (b_end == std::string::npos) return false;
    try {
      Item item;
      item.header = text.substr(at, h_end - at);
      const ojson h = ojson::parse(item.header);
      item.as = h.at("as").get<std::string>();
      item.size = h.at("size").get<int64_t>();
      item.mtime_ns = h.at("mtime_ns").get<int64_t>();
      item.coords = text.substr(h_end + 1, c_end - h_end - 1);
      item.body = text.substr(c_end + 1, b_end - c_end - 1);
      items_[h.at("path").get<std::string>()] = std::move(item);
      dirty_ = true;
    } catch (const std::exception&) {
      return false;
    }
    at = b_end + 1;
  }
  return true;
}

namespace {

std::map<std::string, std::string> digests_of(const ojson& coords) {
  std::map<std::string, std::string> out;
  for (const auto& [name, digest] : coords.at("digests").items())
    out[name] = digest.get<std::string>();
  return out;
}

}  // namespace

bool PartCache::has(const std::string& path) {
  const std::string abs = absolute_of(path);
  const auto it = items_.find(abs);
  if (it == items_.end()) return false;
  const FileState now = state_of(abs);
  return now.ok && it->second.size == now.size && it->second.mtime_ns == now.mtime_ns;
}

std::optional<std::map<std::string, std::string>> PartCache::get_coords(const std::string& path) {
  if (!has(path)) return std::nullopt;
  try {
    return digests_of(ojson::parse(items_.at(absolute_of(path)).coords));
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::optional<ScanPart> PartCache::get(const std::string& path) {
  if (!has(path)) return std::nullopt;  // absent, or the file changed: scan it again
  const Item& item = items_.at(absolute_of(path));
  try {
    ScanPart part;
    part.ds = dataset_from_text(item.body, path);
    // Named as this caller spells the file (relative or absolute), as a fresh scan would.
    part.ds.files = {path};
    for (auto& v : part.ds.variables)
      if (v.origin == item.as) v.origin = path;
    const ojson coords = ojson::parse(item.coords);  // outlives the loops over its items
    part.coord_digests = digests_of(coords);
    for (const auto& [name, b64] : coords.at("values").items())
      part.join_values[name] = decode_base64(b64.get<std::string>(), path);
    return part;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

void PartCache::put(const std::string& path, const ScanPart& part,
                    std::pair<int64_t, int64_t> state) {
  if (!enabled() || state.first < 0) return;  // nothing to keep: the caller holds the part
  const FileState now = state_of(path);
  if (!now.ok || now.size != state.first || now.mtime_ns != state.second) return;  // changed
  Item item;
  item.as = path;
  item.size = state.first;
  item.mtime_ns = state.second;
  item.header = header_line(path, state);
  item.coords = coords_line(part);
  item.body = dataset_text(part.ds);
  items_[absolute_of(path)] = std::move(item);
  dirty_ = true;
}

void PartCache::save(const std::vector<std::string>& files) {
  if (!enabled() || !dirty_) return;
  std::string text = ojson{{"version", build_identity()}, {"group", group_}}.dump() + '\n';
  for (const auto& f : files) {
    const auto it = items_.find(absolute_of(f));
    if (it != items_.end())
      text += it->second.header + '\n' + it->second.coords + '\n' + it->second.body + '\n';
  }
  write_entry(entry_, text);
  dirty_ = false;
}

std::string join_key(const std::string& uri, const std::vector<std::string>& files,
                     const std::string& group, const std::string& concat_dim) {
  if (scan_cache_dir().empty()) return "";
  std::string text = "join\n" + group + '\n' + concat_dim + '\n' + build_identity() + '\n';
  for (const auto& f : files) {
    const std::string abs = absolute_of(f);
    const FileState s = state_of(abs);
    if (!s.ok) return "";
    text +=
        f + '\0' + abs + '\0' + std::to_string(s.size) + ':' + std::to_string(s.mtime_ns) + '\n';
  }
  // "<source>-<state>": the source part names the entries a newer state replaces.
  const std::string source = sha256_hex("join-source\n" + absolute_of(uri) + '\n' + group + '\n' +
                                        concat_dim + '\n' + build_identity());
  return source.substr(0, 32) + "-" + sha256_hex(text);
}

std::optional<Dataset> cached_join(const std::string& key, const std::vector<std::string>& files) {
  if (key.empty()) return std::nullopt;
  const auto text = read_entry(scan_cache_dir() + "/join-" + key + ".json");
  if (!text) return std::nullopt;
  try {
    Dataset ds = dataset_from_text(*text, files.empty() ? "" : files[0]);
    if (ds.files != files) return std::nullopt;
    return ds;
  } catch (const std::exception&) {
    return std::nullopt;  // an unreadable entry is a miss, never an error
  }
}

void store_join(const std::string& key_before, const std::string& uri,
                const std::vector<std::string>& files, const std::string& group,
                const std::string& concat_dim, const Dataset& ds) {
  if (key_before.empty() || join_key(uri, files, group, concat_dim) != key_before) return;
  const std::string dir = scan_cache_dir();
  const std::string name = "join-" + key_before + ".json";
  write_entry(dir + "/" + name, dataset_text(ds));
  // Earlier states of the same source (a day appended since) are never asked for again: drop
  // them, so a daily re-plan does not grow the cache by a joined dataset a day. Only entries
  // named as this function names them are removed.
  const std::string prefix = "join-" + key_before.substr(0, key_before.find('-') + 1);
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string other = e.path().filename().string();
    if (other != name && other.rfind(prefix, 0) == 0 && other.size() > 5 &&
        other.compare(other.size() - 5, 5, ".json") == 0)
      fs::remove(e.path(), ec);
  }
}

void set_scan_executable(const std::string& path) {
  executable() = path;
}
const std::string& scan_executable() {
  return executable();
}

}  // namespace zp
