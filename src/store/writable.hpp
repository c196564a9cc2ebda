// Writable: what the writer asks of where a cache store lives — put, put-if-absent, get, delete,
// list — whatever the backend (a folder: FileStore; an S3 prefix: S3Writer). Keys are
// '/'-separated and relative to the store's root; a key that could leave it is refused. A put is
// atomic: a reader sees the old value or the whole new one, never a part. Keys written in bulk
// (a job's chunks) go through a WriteBatch, which keeps many writes on their way at once and
// waits for all of them in finish(): what stands on them (a done marker) is written after it.
// Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "codec/codec.hpp"

namespace zp {

// Durable: the value survives a crash once put returns (files: flushed to the device before its
// name appears). Cached: left to the kernel's write-back, for what is rewritten every few seconds
// and worthless after a crash (heartbeats). Object stores are durable either way.
enum class Sync { Durable, Cached };

// One key of a batch written piece by piece (a Zarr v3 shard: its inner chunks as they are
// encoded, then its index), so the writer holds one piece, not the object. The key appears at
// commit(), whole, as a put's would; destroyed without commit(), nothing appears. One thread at a
// time.
class PieceWriter {
 public:
  virtual ~PieceWriter() = default;
  virtual void append(const Bytes& piece) = 0;
  virtual void commit() = 0;
};

class WriteBatch {
 public:
  virtual ~WriteBatch() = default;
  // `key` holds the concatenation of `parts` (which need only live until put returns). Thread-safe.
  virtual void put(const std::string& key, const std::vector<const Bytes*>& parts) = 0;
  // `key` written piece by piece, awaited as a put is. Thread-safe. This default keeps the pieces
  // until commit() and puts them then (object stores); files write each piece as it comes.
  virtual std::unique_ptr<PieceWriter> open(const std::string& key);
  // Returns when every key put is durable and visible; Error(Store) or Error(Transient) naming the
  // first that is not. A batch destroyed without finish() leaves its keys undefined (the job that
  // wrote them is redone).
  virtual void finish() = 0;
};

// A value and its version tag (see Writable::get_tagged).
struct Tagged {
  std::string value;
  std::string tag;
};

class Writable {
 public:
  virtual ~Writable() = default;

  // The folder path or URL of the store, as messages name it (never with credentials).
  virtual const std::string& root() const = 0;
  // The path or URL of `key` (validates the key).
  virtual std::string location_of(const std::string& key) const = 0;

  virtual void put(const std::string& key, const Bytes& value, Sync sync = Sync::Durable) const = 0;
  virtual void put(const std::string& key, const std::string& value,
                   Sync sync = Sync::Durable) const = 0;
  // Creates `key` holding `value` durably only when nothing is there; false when something is.
  // Decided by the backend in one step (files: link(2); S3: If-None-Match: *), never by a read
  // followed by a write.
  virtual bool put_if_absent(const std::string& key, const std::string& value) const = 0;
  virtual std::optional<std::string> get(const std::string& key) const = 0;
  // `key`'s value when it holds at most `max_bytes`; nullopt when absent or larger (a store file
  // is untrusted: a planted 2 GB sparse heartbeat must not be read whole). Backends that can ask
  // for the size first do (files: fstat), object stores stop receiving past it (S3); the default
  // reads, then checks.
  virtual std::optional<std::string> get_at_most(const std::string& key, uint64_t max_bytes) const {
    auto v = get(key);
    if (v && v->size() > max_bytes) return std::nullopt;
    return v;
  }
  // The value of `key` with its version tag (S3: the ETag; files: the SHA-256 of the value).
  virtual std::optional<Tagged> get_tagged(const std::string& key) const = 0;
  // Replaces `key` with `value` only while its version is still `tag`, decided by the backend in
  // one step (S3: If-Match; files: under a lock of the key's folder): the new tag, or nullopt when
  // the key changed or is gone. A compare-and-swap: of two runs replacing the same version, one.
  virtual std::optional<std::string> put_if_match(const std::string& key, const std::string& value,
                                                  const std::string& tag) const = 0;
  virtual bool exists(const std::string& key) const = 0;
  // Deletes `key`; nothing happens when it is absent.
  virtual void remove(const std::string& key) const = 0;
  // Names directly under `prefix` (a folder key, "" for the root): values and sub-folders.
  virtual std::vector<std::string> list(const std::string& prefix) const = 0;
  // The first `max` names of list(prefix) (in no order): a folder a store's reader does not trust
  // to be small is read no further (files: readdir stops; S3: the listing's pages stop).
  virtual std::vector<std::string> list_at_most(const std::string& prefix, std::size_t max) const {
    auto names = list(prefix);
    if (names.size() > max) names.resize(max);
    return names;
  }
  // The names that durable puts made in these folders survive a crash after this (files: fsync of
  // the folders and their parents; object stores: nothing to do, a put is durable when it returns).
  virtual void sync_folders(const std::set<std::string>& folders) const = 0;
  // A batch of puts awaited together (see WriteBatch).
  virtual std::unique_ptr<WriteBatch> batch() const = 0;
  // A job's log opened to append to it: a local file descriptor the caller closes. Stores that
  // cannot append (object stores) throw Error(Store).
  virtual int open_append(const std::string& key) const = 0;
};

// The folder key of `key` ("" at the root).
std::string folder_of(const std::string& key);

// Throws Error(Store) when `key` is not a safe relative key.
void check_safe_key(const std::string& key);

}  // namespace zp
