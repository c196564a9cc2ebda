// FileReader: the local file system as a Readable (and Listable) backend. Byte ranges are read
// with pread(2), keeping one descriptor per file open for its lifetime; no HDF5 or netCDF library
// in this path, so reads from many threads run in parallel. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "store/readable.hpp"

namespace zp {

class FileReader : public Readable, public Listable {
 public:
  FileReader() = default;
  ~FileReader() override;
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // Reads exactly `length` bytes at `offset`; a short file is an Error(Source) naming the path.
  Bytes read(const std::string& path, uint64_t offset, uint64_t length) override;
  std::optional<Bytes> get(const std::string& path) override;
  ObjectInfo info(const std::string& path) override;
  std::vector<std::pair<std::string, uint64_t>> list(const std::string& folder) override;
  uint64_t bytes_read() const override { return bytes_read_; }

 private:
  struct Open {
    int fd;
    uint64_t size;  // at open: ranges are checked against it before allocating
  };
  Open descriptor(const std::string& path);
  std::mutex mutex_;
  std::unordered_map<std::string, Open> fds_;
  std::atomic<uint64_t> bytes_read_{0};
};

// A location without a scheme, or file://: the local path it names ("" for any other URL).
std::string local_path_of(const std::string& location);

}  // namespace zp
