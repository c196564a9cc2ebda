#include "store/store_table.hpp"

#include <filesystem>
#include <vector>

#include "core/error.hpp"
#include "store/http_reader.hpp"
#include "store/secrets_channel.hpp"

namespace zp {

namespace {

struct SchemeRow {
  const char* prefix;
  Backend backend;
};

// Every scheme a location may have. Anything else with "://" is refused.
constexpr SchemeRow kSchemes[] = {
    {"file://", Backend::File},
    {"http://", Backend::Http},
    {"https://", Backend::Http},
    {"s3://", Backend::S3},
};

// "https://host/a/../b" -> "https://host/b": dot segments of a URL path.
std::string normalise_url(const std::string& url) {
  const auto scheme_end = url.find("://");
  const auto path_start = url.find('/', scheme_end + 3);
  if (path_start == std::string::npos) return url;
  std::vector<std::string> parts;
  std::string path = url.substr(path_start + 1), part;
  std::string query;
  if (const auto q = path.find('?'); q != std::string::npos) {
    query = path.substr(q);
    path.resize(q);
  }
  std::size_t pos = 0;
  for (;;) {
    const auto slash = path.find('/', pos);
    part = path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (part != "." && !(part.empty() && slash != std::string::npos)) {
      parts.push_back(part);
    }
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  std::string out = url.substr(0, path_start);
  for (const auto& p : parts) out += "/" + p;
  if (parts.empty()) out += "/";
  return out + query;
}

}  // namespace

Backend backend_of(const std::string& location) {
  for (const auto& row : kSchemes)
    if (location.rfind(row.prefix, 0) == 0) return row.backend;
  const auto sep = location.find("://");
  if (sep != std::string::npos && sep > 0 && location.find('/') > sep) {
    std::string known;
    for (const auto& row : kSchemes) known += (known.empty() ? "" : ", ") + std::string(row.prefix);
    throw Error::source(location, "unsupported URL scheme '" + location.substr(0, sep + 3) +
                                      "' (supported: " + known + " and local paths)");
  }
  return Backend::File;
}

bool is_remote(const std::string& location) { return backend_of(location) != Backend::File; }

SourceAccess::SourceAccess(AccessOptions options, bool allow_remote)
    : options_(std::move(options)), allow_remote_(allow_remote) {
  guard_secrets(options_);  // no core file with the secrets in it
}

SourceAccess SourceAccess::local_only() { return SourceAccess({}, false); }

Readable& SourceAccess::reader(const std::string& location, AccessRole role) {
  const Backend b = backend_of(location);
  if (b == Backend::File) return files_;
  if (!allow_remote_) throw Error::source(location, "remote locations are not read here");
  std::lock_guard lock(mutex_);
  auto& slot = remote_[{b, role}];
  if (!slot) slot = std::make_unique<HttpReader>(options_.of(role), b == Backend::S3);
  return *slot;
}

Listable& SourceAccess::lister(const std::string& location, AccessRole role) {
  if (backend_of(location) == Backend::File) return files_;
  return dynamic_cast<Listable&>(reader(location, role));
}

uint64_t SourceAccess::bytes_read() const {
  uint64_t n = files_.bytes_read();
  for (const auto& [k, r] : remote_) n += r->bytes_read();
  return n;
}

std::string parent_location(const std::string& location) {
  if (is_remote(location)) {
    const auto slash = location.rfind('/');
    const auto scheme_end = location.find("://") + 3;
    if (slash == std::string::npos || slash < scheme_end) return location + "/";
    return location.substr(0, slash + 1);
  }
  namespace fs = std::filesystem;
  std::string p = fs::absolute(local_path_of(location)).parent_path().string();
  return p.back() == '/' ? p : p + "/";
}

std::string resolve_location(const std::string& ref, const std::string& base,
                             const std::string& remote_protocol) {
  if (ref.rfind("file://", 0) == 0) return ref.substr(7);
  if (ref.find("://") != std::string::npos) {
    backend_of(ref);  // refuses unknown schemes
    return ref;
  }
  if (!remote_protocol.empty() && remote_protocol != "file") {
    // fsspec: with remote_protocol, "bucket/key" is a URL of that protocol.
    std::string r = ref;
    while (!r.empty() && r.front() == '/') r.erase(0, 1);
    return remote_protocol + "://" + r;
  }
  if (is_remote(base)) {
    if (!ref.empty() && ref.front() == '/') {  // absolute path on the same host
      const auto host_end = base.find('/', base.find("://") + 3);
      return normalise_url(base.substr(0, host_end) + ref);
    }
    return normalise_url(base + ref);
  }
  namespace fs = std::filesystem;
  return fs::path(ref).is_absolute() ? ref : (fs::path(base) / ref).lexically_normal().string();
}

std::string join_location(const std::string& store, const std::string& key) {
  if (store.empty()) return key;
  return store.back() == '/' ? store + key : store + "/" + key;
}

}  // namespace zp
