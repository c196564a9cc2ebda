// FileReader: reads byte ranges of source files with pread(2), keeping one descriptor per file
// open for its lifetime. No HDF5 or netCDF library in this path, so reads from many threads run
// in parallel. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

#include "codec/codec.hpp"

namespace zp {

class FileReader {
 public:
  FileReader() = default;
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // Reads exactly `length` bytes at `offset`; a short file is an Error(Source) naming the path.
  Bytes read(const std::string& path, uint64_t offset, uint64_t length);
  uint64_t bytes_read() const { return bytes_read_; }

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

}  // namespace zp
