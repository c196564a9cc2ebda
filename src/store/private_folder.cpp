#include "store/private_folder.hpp"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "core/console.hpp"
#include "core/error.hpp"

namespace zp {

namespace fs = std::filesystem;

namespace {

Error refused(const std::string& path, const std::string& what, const std::string& why) {
  return Error(ErrorKind::Store, "'" + path + "' cannot be the folder for " + what + ": " + why +
                                     "; zarr-parallel keeps these files only in a folder of its "
                                     "own that nobody else can write (see the README's SLURM "
                                     "section)");
}

// Anyone at all who could rename what is in `st`'s folder, or "". The owner and group of the
// folders above are trusted (a project folder of the group, 2775, owned by its PI: they could
// replace the store itself anyway); every other user is not.
std::string others_can_write(const struct stat& st) {
  if ((st.st_mode & S_IWOTH) != 0 && (st.st_mode & S_ISVTX) == 0)
    return fmt::format("every user may write it (mode {:o})", st.st_mode & 07777);
  return "";
}

// The folders above `real` (a real path, no links) up to "/".
void check_parents(const fs::path& real, const std::string& what) {
  for (fs::path p = real.parent_path();; p = p.parent_path()) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0)
      throw refused(real.string(), what, "cannot check " + p.string() + ": " + errno_text(errno));
    const std::string why = others_can_write(st);
    if (!why.empty())
      throw refused(real.string(), what,
                    "the folder above it, " + p.string() + ", is not safe (" + why + ")");
    if (p == p.parent_path()) break;
  }
}

}  // namespace

std::string private_folder(const std::string& path, const std::string& what) {
  std::error_code ec;
  const fs::path parent = fs::path(path).parent_path();
  if (!parent.empty()) fs::create_directories(parent, ec);  // checked below, as a parent
  const bool made = ::mkdir(path.c_str(), 0700) == 0;
  if (!made && errno != EEXIST) throw refused(path, what, "cannot create it: " + errno_text(errno));
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0)
    throw refused(path, what, "cannot check it: " + errno_text(errno));
  if (!S_ISDIR(st.st_mode)) throw refused(path, what, "it is not a folder (a link or a file)");
  if (st.st_uid != ::geteuid())
    throw refused(path, what, fmt::format("it belongs to uid {}, not to us", st.st_uid));
  // mkdir's mode is cut by the umask only; a folder of ours left open (made by an earlier version
  // under umask 002, or opened by hand) is closed, and what was planted meanwhile is checked by
  // only_own_files before SLURM opens anything there.
  const bool open = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
  if ((made || open) && ::chmod(path.c_str(), 0700) != 0)
    throw refused(path, what, "cannot make it private (chmod 0700): " + errno_text(errno));
  if (!made && open)
    say(stderr, fmt::format("zarr-parallel: made {} private (mode {:o} -> 700): it holds {}\n",
                            path, st.st_mode & 07777, what));
  if ((made || open) && ::lstat(path.c_str(), &st) != 0)
    throw refused(path, what, "cannot check it: " + errno_text(errno));
  if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
    throw refused(path, what,
                  fmt::format("its group or others may write it (mode {:o})", st.st_mode & 07777));
  const fs::path real = fs::canonical(path, ec);
  if (ec) throw refused(path, what, "cannot resolve it: " + ec.message());
  check_parents(real, what);
  return real.string();
}

void only_own_files(const std::string& folder, const std::string& prefix, const std::string& what) {
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    struct stat st {};
    if (::lstat(it->path().c_str(), &st) != 0 && errno == ENOENT) continue;
    if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || st.st_nlink != 1)
      throw refused(folder, what,
                    name + " in it is not a file of ours (a link, another's file or a hard link)");
  }
  if (ec) throw refused(folder, what, "cannot list it: " + ec.message());
}

}  // namespace zp
