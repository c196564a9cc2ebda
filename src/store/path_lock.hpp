// PathLock: an exclusive lock on a path that may not exist yet, held by flock(2) on a small file
// next to it (`.NAME.zp-lock` in the same folder). The kernel drops the lock when its holder dies,
// however it dies, so there is no stale lock to take over and no read-then-write race. The file
// records the holder (host, pid, start time) for the message a refused run prints; the holder
// unlinks it on release while still holding the lock, and a taker checks it locked the file that
// is still at the path. Where flock is not supported (Cray DVS) an fcntl lock of the same kind is
// used; where no lock is (Lustre without `flock`, NFS without its lock daemon) the lock is only
// the file: a live process on this host recorded there is refused, anything else is not.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace zp {

class PathLock {
 public:
  // Takes the lock on `path` or throws Error(Store) naming the holder. Never blocks.
  static std::unique_ptr<PathLock> acquire(const std::string& path);
  ~PathLock();  // releases
  PathLock(const PathLock&) = delete;
  PathLock& operator=(const PathLock&) = delete;

  const std::string& lock_file() const { return lock_file_; }
  // Why the file system could not lock (empty when it did): the caller says so to the user.
  const std::string& unlocked() const { return unlocked_; }

  // The lock file that guards `path`.
  static std::string lock_file_for(const std::string& path);
  // Who holds the lock on `path` now (from the file), when someone does.
  static std::optional<nlohmann::json> holder(const std::string& path);

 private:
  PathLock(std::string lock_file, int fd) : lock_file_(std::move(lock_file)), fd_(fd) {}
  std::string lock_file_;
  int fd_ = -1;
  std::string unlocked_;
};

}  // namespace zp
