// Readable: what sources and the chunk reader may ask of where bytes live — byte ranges, whole
// objects, sizes and versions — whatever the backend (local files, HTTP(S), S3). Locations are
// what the manifest holds: a local path or a URL. Listable is the separate capability of naming
// the objects under a prefix (a file system and S3 have it, plain HTTP does not). Backends are
// chosen by URL scheme in store_table.hpp. Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "codec/codec.hpp"

namespace zp {

struct ObjectInfo {
  bool exists = false;
  uint64_t size = 0;
  int64_t mtime_ns = 0;  // files
  std::string etag;      // remote objects: the server's version tag, else "Last-Modified: DATE"
                         // ("" when it sends neither)
};

struct RangeRequest {
  std::string location;
  uint64_t offset = 0;
  uint64_t length = 0;
};

class Readable {
 public:
  virtual ~Readable() = default;
  // Exactly `length` bytes at `offset`. A missing object or a range past its end is Error(Source)
  // naming the location; a remote failure that outlived its retries is Error(Transient).
  virtual Bytes read(const std::string& location, uint64_t offset, uint64_t length) = 0;
  // Several ranges at once (remote backends fetch them concurrently); results in request order.
  virtual std::vector<Bytes> read_many(const std::vector<RangeRequest>& ranges) {
    std::vector<Bytes> out;
    out.reserve(ranges.size());
    for (const auto& r : ranges) out.push_back(read(r.location, r.offset, r.length));
    return out;
  }
  // The whole object, or nullopt when there is none.
  virtual std::optional<Bytes> get(const std::string& location) = 0;
  virtual ObjectInfo info(const std::string& location) = 0;
  virtual std::vector<ObjectInfo> info_many(const std::vector<std::string>& locations) {
    std::vector<ObjectInfo> out;
    out.reserve(locations.size());
    for (const auto& l : locations) out.push_back(info(l));
    return out;
  }
  // Reads of `location` must find it as it was planned: a backend that sees the object's size and
  // version in every answer (HTTP: Content-Range, ETag) checks them there and fails a read of a
  // changed object (Error(Source)), at no extra request. Others ignore it (callers stat files).
  virtual void expect_version(const std::string& location, uint64_t size, const std::string& etag) {
    (void)location, (void)size, (void)etag;
  }
  // The object's size and version as the last answer to a read of it carried them (remote
  // backends; exists=false when none was seen or the answer gave no size): a caller holding bytes
  // read before it knew the planned version compares this with it instead of reading again.
  virtual ObjectInfo version_seen(const std::string& location) {
    (void)location;
    return {};
  }
  // True when reads cost a round trip: callers then batch them (read_many) instead of reading
  // chunk by chunk in their threads.
  virtual bool remote() const { return false; }
  virtual uint64_t bytes_read() const = 0;
};

class Listable {
 public:
  virtual ~Listable() = default;
  // Keys (relative to `prefix`, '/'-separated) of every object below it, with their sizes.
  virtual std::vector<std::pair<std::string, uint64_t>> list(const std::string& prefix) = 0;
};

// An ObjectInfo::etag as a message shows it: "ETag \"abc\"" or "Last-Modified: DATE".
inline std::string version_label(const std::string& version) {
  return version.rfind("Last-Modified: ", 0) == 0 ? version : "ETag " + version;
}

}  // namespace zp
