// FileStore: a key-value store of byte strings in a folder, as a Zarr store on a file system.
// Keys are '/'-separated relative paths; a key that could leave the folder ('..', absolute, NUL,
// control characters) is refused. put() is atomic: bytes go to a unique temporary file in the
// same folder, then rename(2), so a reader sees the old value or the whole new one, never a part.
// Durable puts also flush the bytes to the device before the rename, so that after a power loss
// or a node crash a key never holds an empty or partial file; sync_folders() then makes the new
// names durable, which a done or complete marker must wait for.
// Every access below the root walks the key one folder at a time with O_NOFOLLOW (folder_walk):
// a symbolic link, FIFO or device planted inside a store is refused (Error(Store) naming it), so
// nothing is ever written, replaced or read outside the store through one.
// Thread-safe (no shared mutable state besides the file system). The Writable of a folder.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "codec/codec.hpp"
#include "store/pending_flushes.hpp"
#include "store/writable.hpp"

namespace zp {

class FileStore : public Writable {
 public:
  explicit FileStore(std::string root);

  const std::string& root() const override { return root_; }
  std::string path_of(const std::string& key) const;  // validates the key
  std::string location_of(const std::string& key) const override { return path_of(key); }

  void put(const std::string& key, const Bytes& value, Sync sync = Sync::Durable) const override;
  void put(const std::string& key, const std::string& value,
           Sync sync = Sync::Durable) const override;
  // A temporary file flushed, then link(2)ed to the key's name, which fails when the name exists.
  bool put_if_absent(const std::string& key, const std::string& value) const override;
  // The concatenation of `parts` as one value (a shard from its pieces, without joining them).
  // With `later`, a durable put starts the write-back and renames at once; the wait for the device
  // is left to later->flush().
  void put_parts(const std::string& key, const std::vector<const Bytes*>& parts,
                 Sync sync = Sync::Durable, PendingFlushes* later = nullptr) const;
  // Flushes the entries of each folder (a folder key, "" for the root) and of its parents up to
  // the root, each once: the names that durable puts renamed into them survive a crash after this.
  void sync_folders(const std::set<std::string>& folders) const override;
  std::optional<std::string> get(const std::string& key) const override;
  std::optional<std::string> get_at_most(const std::string& key, uint64_t max_bytes) const override;
  // The tag is the SHA-256 of the value.
  std::optional<Tagged> get_tagged(const std::string& key) const override;
  // Compared and replaced under an flock(2) of the key's folder, which every put_if_match of
  // every process takes (plain puts do not: the key must be written only this way).
  std::optional<std::string> put_if_match(const std::string& key, const std::string& value,
                                          const std::string& tag) const override;
  bool exists(const std::string& key) const override;
  void remove(const std::string& key) const override;
  // Creates folder `key` and those on its way (none of them may be a link).
  void make_folder(const std::string& key) const;
  // `key` opened to append to it (created 0644), for a log: a file descriptor the caller closes.
  int open_append(const std::string& key) const override;
  // Keys directly under `prefix` (a folder key), file names only.
  std::vector<std::string> list(const std::string& prefix) const override;
  std::vector<std::string> list_at_most(const std::string& prefix, std::size_t max) const override;
  // Durable puts whose write-back starts at once and is awaited, with their folders, in finish().
  std::unique_ptr<WriteBatch> batch() const override;
  // The key a temporary file of put() is written for (`relative` is its path under the root), or
  // nullopt when the name is not one put() makes.
  static std::optional<std::string> key_of_temporary(const std::string& relative);

 private:
  std::string root_;
};

// fsync(2) of a file or folder at `path`; a file system that cannot (EINVAL) is left as it is.
// Error(Store) naming `path` when the flush fails: what was written there may be lost.
void sync_path(const std::string& path);

}  // namespace zp
