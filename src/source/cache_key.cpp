#include "source/cache_key.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

namespace zp {

namespace {

constexpr std::size_t kKeyBytes = 32;

// The key at `path` when it is this user's own private 32-byte regular file; `why` otherwise.
std::optional<std::string> read_key(const std::string& path, std::string& why) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    why = errno == ENOENT ? "" : fmt::format("{} cannot be opened", path);
    return std::nullopt;
  }
  struct stat st {};
  std::string key(kKeyBytes, '\0');
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() ||
      (st.st_mode & 077) != 0 || st.st_size != static_cast<off_t>(kKeyBytes)) {
    why = fmt::format("{} is not a 32-byte file of this user's that only it may read", path);
  } else if (::read(fd, key.data(), kKeyBytes) != static_cast<ssize_t>(kKeyBytes)) {
    why = fmt::format("{} cannot be read", path);
  }
  ::close(fd);
  if (!why.empty()) return std::nullopt;
  return key;
}

// A new key at `path`: written whole to a new temporary file, then linked into place (link fails
// when another process made one first; that one is then read).
void make_key(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  unsigned char bytes[kKeyBytes + 8];
  if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) return;
  const std::string tmp =
      path + fmt::format(".tmp.{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}", bytes[32],
                         bytes[33], bytes[34], bytes[35], bytes[36], bytes[37], bytes[38],
                         bytes[39]);
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return;
  const bool ok = ::write(fd, bytes, kKeyBytes) == static_cast<ssize_t>(kKeyBytes);
  if (::close(fd) == 0 && ok) (void)::link(tmp.c_str(), path.c_str());
  ::unlink(tmp.c_str());
}

std::vector<std::string> key_paths(const std::string& cache_base) {
  std::vector<std::string> out;
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  if (xdg && *xdg)
    out.push_back(std::string(xdg) + "/zarr-parallel/manifest-key");
  else if (home && *home)
    out.push_back(std::string(home) + "/.cache/zarr-parallel/manifest-key");
  if (!cache_base.empty())
    out.push_back(cache_base + "/manifest-key-" + std::to_string(::geteuid()));
  return out;
}

}  // namespace

std::optional<std::string> manifest_cache_key(const std::string& cache_base, std::string* why) {
  static std::mutex mutex;
  static std::optional<std::string> key;
  static std::string reason;
  static bool done = false;
  std::lock_guard lock(mutex);
  if (!done) {
    done = true;
    for (const auto& path : key_paths(cache_base)) {
      std::string w;
      key = read_key(path, w);
      if (!key && w.empty()) {  // absent: made here, then read back (another may have won)
        make_key(path);
        key = read_key(path, w);
      }
      if (key) break;
      reason += (reason.empty() ? "" : "; ") + (w.empty() ? path + " cannot be made" : w);
    }
  }
  if (!key && why) *why = reason;
  return key;
}

}  // namespace zp
