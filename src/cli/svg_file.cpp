// `plan --svg FILE`: the picture replaces only a regular file that is an earlier picture of ours,
// is written to a new temporary file beside it and renamed into place, and never follows a link
// or opens a FIFO or device (which would create a link's target or hang).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <random>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "plan/plan_svg.hpp"

namespace zp {

namespace {

Error svg_error(const std::string& path, const std::string& what) {
  return Error(ErrorKind::Store, "'" + path + "' " + what + "; choose another --svg file");
}

// Refuses anything at `path` but nothing or a regular file that starts with our marker.
void check_replaceable(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return;
    throw svg_error(path, "cannot be examined: " + errno_text(errno));
  }
  if (!S_ISREG(st.st_mode))
    throw svg_error(path, S_ISLNK(st.st_mode) ? "is a symbolic link" : "is not a regular file");
  const int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  const std::string marker = kPlanSvgMarker;
  std::string head(marker.size(), '\0');
  const ssize_t n = fd < 0 ? -1 : ::read(fd, head.data(), head.size());
  if (fd >= 0) ::close(fd);
  if (n != static_cast<ssize_t>(head.size()) || head != marker)
    throw svg_error(path, "exists and is not a plan picture zarr-parallel wrote");
}

bool write_all(int fd, const std::string& text) {
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

}  // namespace

void write_plan_svg_file(const std::string& path, const std::string& svg) {
  check_replaceable(path);
  std::filesystem::path p(path);
  const std::string tmp = (p.parent_path() / ("." + p.filename().string() + ".zptmp." +
                                              std::to_string(std::random_device{}())))
                              .string();
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0)
    throw svg_error(path, "cannot be written (temporary file: " + errno_text(errno) + ")");
  const bool written = write_all(fd, svg);
  const bool closed = ::close(fd) == 0;
  if (!written || !closed || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    throw svg_error(path, "cannot be written: " + errno_text(err));
  }
}

}  // namespace zp
