#include "store/file_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "core/error.hpp"

namespace zp {

FileReader::~FileReader() {
  for (auto& [path, f] : fds_) ::close(f.fd);
}

FileReader::Open FileReader::descriptor(const std::string& path) {
  std::lock_guard lock(mutex_);
  auto it = fds_.find(path);
  if (it != fds_.end()) return it->second;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
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
  const Open f{fd, static_cast<uint64_t>(st.st_size)};
  fds_.emplace(path, f);
  return f;
}

Bytes FileReader::read(const std::string& path, uint64_t offset, uint64_t length) {
  const auto [fd, size] = descriptor(path);
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

}  // namespace zp
