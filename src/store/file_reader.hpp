// FileReader: the local file system as a Readable (and Listable) backend. Byte ranges are read
// with pread(2); no HDF5 or netCDF library in this path, so reads from many threads run in
// parallel. Descriptors stay open between reads, at most max_open() of them (least recently used
// closed first): a job may read 10,000 daily files under a limit of 1,024 descriptors.
// Thread-safe.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "store/readable.hpp"

namespace zp {

class FileReader : public Readable, public Listable {
 public:
  explicit FileReader(std::size_t max_open = default_max_open())
      : max_open_(std::max<std::size_t>(max_open, 1)) {}
  ~FileReader() override;
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // Reads exactly `length` bytes at `offset`; a short file is an Error(Source) naming the path.
  Bytes read(const std::string& path, uint64_t offset, uint64_t length) override;
  std::optional<Bytes> get(const std::string& path) override;
  ObjectInfo info(const std::string& path) override;
  std::vector<std::pair<std::string, uint64_t>> list(const std::string& folder) override;
  uint64_t bytes_read() const override { return bytes_read_; }

  // Descriptors kept open at once by default: a quarter of the process's limit, 16 to 1,024.
  static std::size_t default_max_open();

 private:
  struct OpenFile {  // closed when the last reader of an evicted file lets go
    OpenFile(int f, uint64_t s) : fd(f), size(s) {}
    OpenFile(const OpenFile&) = delete;
    OpenFile& operator=(const OpenFile&) = delete;
    ~OpenFile();
    const int fd;
    const uint64_t size;  // at open: ranges are checked against it before allocating
  };
  std::shared_ptr<const OpenFile> descriptor(const std::string& path);
  const std::size_t max_open_;
  std::mutex mutex_;
  std::list<std::string> recent_;  // most recently used first
  struct Entry {
    std::shared_ptr<const OpenFile> file;
    std::list<std::string>::iterator at;
  };
  std::unordered_map<std::string, Entry> open_;
  std::atomic<uint64_t> bytes_read_{0};
};

// Error(Source) naming `where` when a document (metadata, a reference set) read whole is larger
// than over HTTP it may be (ZP_HTTP_MAX_DOCUMENT_MB): checked on its size, before it is read, so a
// sparse 20 GB file is an error and not an allocation.
void check_document_size(const std::string& where, uint64_t size);

// A location without a scheme, or file://: the local path it names ("" for any other URL).
std::string local_path_of(const std::string& location);

}  // namespace zp
