#include "store/file_reader.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>

#include "core/error.hpp"
#include "store/http_reader.hpp"

namespace zp {

std::string local_path_of(const std::string& location) {
  if (location.rfind("file://", 0) == 0) return location.substr(7);
  if (location.find("://") != std::string::npos) return "";
  return location;
}

FileReader::~FileReader() = default;

FileReader::OpenFile::~OpenFile() {
  ::close(fd);
}

std::size_t FileReader::default_max_open() {
  static const std::size_t n = [] {
    struct rlimit r {};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY)
      return std::size_t{1024};
    return std::clamp<std::size_t>(static_cast<std::size_t>(r.rlim_cur / 4), 16, 1024);
  }();
  return n;
}

std::shared_ptr<const FileReader::OpenFile> FileReader::descriptor(const std::string& path) {
  std::lock_guard lock(mutex_);
  auto it = open_.find(path);
  if (it != open_.end()) {
    recent_.splice(recent_.begin(), recent_, it->second.at);
    return it->second.file;
  }
  // O_NONBLOCK: a FIFO or device named by a source (or a reference set) must not block the open;
  // it is refused below. Reads of regular files ignore the flag.
  constexpr int kFlags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
  int fd = ::open(path.c_str(), kFlags);
  if (fd < 0 && (errno == EMFILE || errno == ENFILE) && !open_.empty()) {
    open_.clear();  // the process is out of descriptors: give back ours, then try again
    recent_.clear();
    fd = ::open(path.c_str(), kFlags);
  }
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) throw Error::source_missing(path, "cannot open: " + errno_text(err));
    throw Error::source(path, "cannot open: " + errno_text(err));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error::source(path, "cannot stat: " + errno_text(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error::source(path, "not a regular file (a FIFO, device or folder is never read)");
  }
  auto file = std::make_shared<const OpenFile>(fd, static_cast<uint64_t>(st.st_size));
  if (open_.size() >= max_open_) {
    // Closed once no reader holds it: one still inside pread keeps its descriptor alive.
    open_.erase(recent_.back());
    recent_.pop_back();
  }
  recent_.push_front(path);
  open_.emplace(path, Entry{file, recent_.begin()});
  return file;
}

Bytes FileReader::read(const std::string& path, uint64_t offset, uint64_t length) {
  const std::shared_ptr<const OpenFile> file = descriptor(path);
  const int fd = file->fd;
  const uint64_t size = file->size;
  // Checked before allocating: a reference of 2^63 bytes must be an error, not an allocation.
  if (offset > size || length > size - offset)
    throw Error::source(path, "range " + std::to_string(offset) + "+" + std::to_string(length) +
                                  " lies past the end of the file (" + std::to_string(size) +
                                  " bytes): truncated file or bad reference");
  Bytes out(length);
  uint64_t done = 0;
  while (done < length) {
    const ssize_t n =
        ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw Error::source(
          path, "read failed at offset " + std::to_string(offset) + ": " + errno_text(errno));
    }
    if (n == 0)
      throw Error::source(path, "file ends before byte " + std::to_string(offset + length) +
                                    " (range " + std::to_string(offset) + "+" +
                                    std::to_string(length) + "): truncated file or bad reference");
    done += static_cast<uint64_t>(n);
  }
  bytes_read_ += length;
  return out;
}

void check_document_size(const std::string& where, uint64_t size) {
  const uint64_t limit = http_max_document();
  if (size > limit)
    throw Error::source(where, "is " + std::to_string(size) +
                                   " bytes, over the limit for a whole document of " +
                                   std::to_string(limit >> 20) + " MiB (ZP_HTTP_MAX_DOCUMENT_MB)");
}

std::optional<Bytes> FileReader::get(const std::string& path) {
  const ObjectInfo i = info(path);
  if (!i.exists) return std::nullopt;
  check_document_size(path, i.size);
  return read(path, 0, i.size);
}

ObjectInfo FileReader::info(const std::string& path) {
  ObjectInfo out;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return out;
  out.exists = true;
  out.size = static_cast<uint64_t>(st.st_size);
  out.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  return out;
}

std::vector<std::pair<std::string, uint64_t>> FileReader::list(const std::string& folder) {
  namespace fs = std::filesystem;
  std::vector<std::pair<std::string, uint64_t>> out;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw Error::source(folder, "not a Zarr folder");
  for (auto it = fs::recursive_directory_iterator(folder, ec); !ec && it != fs::end(it);
       it.increment(ec)) {
    if (!it->is_regular_file(ec)) continue;
    out.emplace_back(fs::relative(it->path(), folder).generic_string(), it->file_size(ec));
  }
  if (ec) throw Error::source(folder, "cannot list: " + ec.message());
  return out;
}

}  // namespace zp
