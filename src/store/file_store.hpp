// FileStore: a key-value store of byte strings in a folder, as a Zarr store on a file system.
// Keys are '/'-separated relative paths; a key that could leave the folder ('..', absolute, NUL,
// control characters) is refused. put() is atomic: bytes go to a unique temporary file in the
// same folder, then rename(2), so a reader sees the old value or the whole new one, never a part.
// Thread-safe (no shared mutable state besides the file system).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "codec/codec.hpp"

namespace zp {

class FileStore {
 public:
  explicit FileStore(std::string root);

  const std::string& root() const { return root_; }
  std::string path_of(const std::string& key) const;  // validates the key

  void put(const std::string& key, const Bytes& value) const;
  void put(const std::string& key, const std::string& value) const;
  // The concatenation of `parts` as one value (a shard from its pieces, without joining them).
  void put_parts(const std::string& key, const std::vector<const Bytes*>& parts) const;
  std::optional<std::string> get(const std::string& key) const;
  bool exists(const std::string& key) const;
  void remove(const std::string& key) const;
  // Keys directly under `prefix` (a folder key), file names only.
  std::vector<std::string> list(const std::string& prefix) const;
  // The key a temporary file of put() is written for (`relative` is its path under the root), or
  // nullopt when the name is not one put() makes.
  static std::optional<std::string> key_of_temporary(const std::string& relative);

 private:
  std::string root_;
};

// Throws Error(Store) when `key` is not a safe relative key.
void check_safe_key(const std::string& key);

}  // namespace zp
