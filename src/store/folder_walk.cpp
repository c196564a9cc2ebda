#include "store/folder_walk.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "core/error.hpp"

namespace zp {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

namespace {

constexpr int kFolderFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;

Error not_a_folder(const std::string& path, int err) {
  return Error::store(path, err == ELOOP || err == ENOTDIR
                                ? "is a symbolic link or not a folder: zarr-parallel writes only "
                                  "inside the store and follows no link in it"
                                : "cannot open the folder: " + errno_text(err));
}

// Component `name` of the folder `dir`, made when missing and `create`.
UniqueFd open_component(int dir, const std::string& name, const std::string& path, bool create) {
  for (int tries = 0; tries < 2; ++tries) {
    const int fd = ::openat(dir, name.c_str(), kFolderFlags);
    if (fd >= 0) return UniqueFd(fd);
    const int err = errno;
    if (err != ENOENT) throw not_a_folder(path, err);
    if (!create) return UniqueFd();
    if (::mkdirat(dir, name.c_str(), 0755) != 0 && errno != EEXIST)
      throw Error::store(path, "cannot create the folder: " + errno_text(errno));
  }
  throw not_a_folder(path, ENOENT);
}

}  // namespace

UniqueFd open_folder_beneath(const std::string& root, const std::string& rel, bool create) {
  if (create) {
    std::error_code ec;
    std::filesystem::create_directories(root, ec);
    if (ec) throw Error::store(root, "cannot create the folder: " + ec.message());
  }
  UniqueFd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    if (errno == ENOENT && !create) return UniqueFd();
    throw Error::store(root, "cannot open the store folder: " + errno_text(errno));
  }
  std::string path = root;
  for (std::size_t start = 0; start < rel.size();) {
    const auto slash = rel.find('/', start);
    const auto end = slash == std::string::npos ? rel.size() : slash;
    const std::string name = rel.substr(start, end - start);
    path += "/" + name;
    dir = open_component(dir.get(), name, path, create);
    if (!dir.valid()) return dir;
    start = end + 1;
  }
  return dir;
}

void refuse_special_entry(int dir, const std::string& name, const std::string& path) {
  struct stat st {};
  if (::fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return;
  if (S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return;
  throw Error::store(path, S_ISLNK(st.st_mode)
                               ? "is a symbolic link: zarr-parallel follows no link in a store"
                               : "is not a regular file (a FIFO, device or socket)");
}

}  // namespace zp
