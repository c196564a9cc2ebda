#include "core/error.hpp"

#include <cstring>

namespace zp {

Error::Error(ErrorKind kind, std::string message)
    : std::runtime_error(std::move(message)), kind_(kind) {}

Error Error::config(const std::string& key, const std::string& what) {
  return Error(ErrorKind::Config, key.empty() ? what : "config key '" + key + "': " + what);
}

Error Error::source(const std::string& where, const std::string& what) {
  return Error(ErrorKind::Source, where + ": " + what);
}

Error Error::transient(const std::string& where, const std::string& what) {
  return Error(ErrorKind::Transient, where + ": " + what);
}

Error Error::source_missing(const std::string& where, const std::string& what) {
  Error e = source(where, what);
  e.missing_ = true;
  return e;
}

Error Error::store(const std::string& path, const std::string& what) {
  return Error(ErrorKind::Store, "store '" + path + "': " + what);
}

Error Error::internal(const std::string& what) {
  return Error(ErrorKind::Internal, "internal error: " + what);
}

std::string errno_text(int err) {
  return std::strerror(err);
}

}  // namespace zp
