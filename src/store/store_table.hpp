// Which backend reads a location: one explicit table of URL schemes (none or file:// = the local
// file system, http:// and https:// = HTTP, s3:// = S3). SourceAccess owns one backend per scheme
// and access role, made on first use, so the sources and the chunk reader never branch on schemes
// themselves. Also the location arithmetic references need (parent, join, relative URLs).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "store/file_reader.hpp"
#include "store/readable.hpp"
#include "store/storage_options.hpp"

namespace zp {

enum class Backend { File, Http, S3 };

// The backend of a location; an unknown scheme ("ftp://", "gs://") is Error(Source) naming it.
Backend backend_of(const std::string& location);
bool is_remote(const std::string& location);

class SourceAccess {
 public:
  explicit SourceAccess(AccessOptions options = {}, bool allow_remote = true);
  // Reads local files only: a remote location is Error(Source). For callers that parse untrusted
  // text without a network in mind (the fuzzers, tests).
  static SourceAccess local_only();
  Readable& reader(const std::string& location, AccessRole role = AccessRole::Target);
  Listable& lister(const std::string& location, AccessRole role = AccessRole::Target);
  const AccessOptions& options() const { return options_; }
  uint64_t bytes_read() const;

 private:
  AccessOptions options_;
  bool allow_remote_ = true;
  FileReader files_;
  std::mutex mutex_;
  std::map<std::pair<Backend, AccessRole>, std::unique_ptr<Readable>> remote_;
};

// The folder (or URL prefix) holding a location, with its trailing '/'.
std::string parent_location(const std::string& location);
// `ref` as a reference set writes it, resolved: absolute URLs and paths as they are, "file://"
// stripped, a path without a scheme given `remote_protocol` when one is set, else relative to
// `base` (a folder or URL prefix ending in '/').
std::string resolve_location(const std::string& ref, const std::string& base,
                             const std::string& remote_protocol);
// `key` below a store location ("s3://b/x.zarr" + "t/.zarray").
std::string join_location(const std::string& store, const std::string& key);

}  // namespace zp
