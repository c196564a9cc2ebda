// Opening a folder below a store's root one component at a time with O_NOFOLLOW, so that a
// symbolic link planted inside a store (an array folder, logs/, the side folder) can never lead a
// write, a rename or a removal outside it. The root itself is the user's path and may be a link.
#pragma once

#include <string>

namespace zp {

// A file descriptor, closed when it goes out of scope.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }

 private:
  int fd_ = -1;
};

// The folder `rel` ('/'-separated key already checked by check_safe_key; "" for the root) below
// `root`, missing folders created when `create` (the root too). Error(Store) naming the path when
// a component is a symbolic link or no folder; an invalid fd when one is missing and !create.
UniqueFd open_folder_beneath(const std::string& root, const std::string& rel, bool create);

// The entry `name` of folder `dir` is a symbolic link, a FIFO, a device or a socket (not a regular
// file or folder): Error(Store) naming `path`. Absent is fine.
void refuse_special_entry(int dir, const std::string& name, const std::string& path);

}  // namespace zp
