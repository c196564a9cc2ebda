#include "store/path_lock.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <filesystem>

#include "core/error.hpp"

namespace zp {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string PathLock::lock_file_for(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (p.has_filename() == false) p = p.parent_path();
  return (p.parent_path() / ("." + p.filename().string() + ".zp-lock")).string();
}

namespace {

std::string read_all(int fd) {
  std::string out;
  char buf[512];
  off_t at = 0;
  for (;;) {
    const ssize_t n = ::pread(fd, buf, sizeof buf, at);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
    at += n;
    if (out.size() > 65536) break;
  }
  return out;
}

std::string describe_holder(const std::optional<json>& h) {
  if (!h) return "a run that has not yet recorded itself";
  const std::time_t t = static_cast<std::time_t>(h->value("started", 0.0));
  char when[64] = {};
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&t));
  return "host " + h->value("host", std::string("?")) + ", pid " +
         std::to_string(h->value("pid", 0L)) + ", since " + when;
}

// What flock(2) or fcntl(2) locks answer on a file system that has none: Lustre mounted without
// `flock` (ENOSYS), NFS without its lock daemon (ENOLCK), Cray DVS (ENOTSUPP, 524: no flock, but
// fcntl locks).
bool no_locks_here(int err) {
  return err == ENOSYS || err == ENOLCK || err == EOPNOTSUPP || err == 524;
}

// The lock, by flock(2) or else by an open-file-description fcntl lock on the whole file (the same
// semantics). 0 taken; EWOULDBLOCK held by another; or the errno that says there are no locks.
int take(int fd) {
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return 0;
  if (!no_locks_here(errno)) return errno;
  struct flock whole {};
  whole.l_type = F_WRLCK;
  whole.l_whence = SEEK_SET;
  if (::fcntl(fd, F_OFD_SETLK, &whole) == 0) return 0;
  return errno == EAGAIN || errno == EACCES ? EWOULDBLOCK : errno;
}

// Without locks, the recorded holder is believed when it is a live process on this host.
bool holder_alive_here(const json& h) {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const long pid = h.value("pid", 0L);
  return h.value("host", std::string()) == host && pid > 0 && pid != getpid() &&
         (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

}  // namespace

std::optional<json> PathLock::holder(const std::string& path) {
  const int fd = ::open(lock_file_for(path).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  const std::string text = read_all(fd);
  ::close(fd);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::unique_ptr<PathLock> PathLock::acquire(const std::string& path) {
  const std::string file = lock_file_for(path);
  std::error_code ec;
  fs::create_directories(fs::path(file).parent_path(), ec);  // a new cache_dir
  // A holder unlinks the file while releasing: retry when we locked a file no longer at the path.
  for (int attempt = 0; attempt < 100; ++attempt) {
    const int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
      throw Error::store(path, "cannot create the lock file " + file + ": " + errno_text(errno));
    const int err = take(fd);
    std::string unlocked;
    if (err != 0 && no_locks_here(err)) {
      // Refusing would make such a file system unusable: go on with what the file records.
      const json h = json::parse(read_all(fd), nullptr, false);
      if (h.is_object() && holder_alive_here(h)) {
        ::close(fd);
        throw Error::store(path, "another zarr-parallel run holds it: " + describe_holder(h));
      }
      unlocked = errno_text(err);
    } else if (err != 0) {
      const std::string text = read_all(fd);
      ::close(fd);
      if (err != EWOULDBLOCK)
        throw Error::store(path, "cannot lock " + file + ": " + errno_text(err));
      json j = json::parse(text, nullptr, false);
      throw Error::store(path, "another zarr-parallel run holds it: " +
                                   describe_holder(j.is_object() ? std::optional<json>(j)
                                                                 : std::nullopt));
    }
    struct stat by_fd {}, by_path {};
    if (::fstat(fd, &by_fd) != 0 || ::stat(file.c_str(), &by_path) != 0 ||
        by_fd.st_ino != by_path.st_ino || by_fd.st_dev != by_path.st_dev) {
      ::close(fd);
      continue;
    }
    const std::string before = read_all(fd);
    const json prior = json::parse(before, nullptr, false);
    if (!before.empty() && !(prior.is_object() && prior.contains("pid"))) {
      ::close(fd);  // not a lock file of ours: leave it as it is
      throw Error::store(path, file + " exists and was not written by zarr-parallel; refusing to "
                                      "use it as the lock (move it away)");
    }
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    const double now =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    const std::string text = json{{"host", host}, {"pid", getpid()}, {"started", now}}.dump();
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, text.data(), text.size(), 0) < 0) {
      // The lock holds without the note; only the refusal message loses its details.
    }
    auto lock = std::unique_ptr<PathLock>(new PathLock(file, fd));
    lock->unlocked_ = unlocked;
    return lock;
  }
  throw Error::store(path, "could not take the lock " + file + " (it keeps being replaced)");
}

PathLock::~PathLock() {
  if (fd_ < 0) return;
  ::unlink(lock_file_.c_str());  // while still locked: a waiting taker then sees a new inode
  ::close(fd_);
}

}  // namespace zp
