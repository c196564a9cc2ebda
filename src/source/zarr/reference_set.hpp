// A store seen as its keys: each key's bytes inline, or a byte range of an object. A kerchunk
// reference set is one (kerchunk/), and so is a Zarr store listed object by object (zarr_listing).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/bytes.hpp"

namespace zp {

// One reference: inline bytes, or a byte range of an object (length < 0: the whole object).
struct Reference {
  std::shared_ptr<const Bytes> data;
  std::string path;  // resolved location: a local path or a URL
  int64_t offset = 0;
  int64_t length = -1;
};

// Chunk references a kerchunk "gen" entry expanded, held as columns: keys back to back in one
// string, paths by number. A 20-year hourly set (467,520 references) is about 50 bytes a
// reference here, against some 200 as map nodes with a path string each (issue 32, P1).
class GeneratedReferences {
 public:
  struct Row {
    uint32_t path = 0;  // into paths()
    int64_t offset = 0;
    int64_t length = -1;
  };
  // The number of `path` (a resolved location), added when new.
  uint32_t path_id(const std::string& path);
  const std::string& path(uint32_t id) const { return paths_[id]; }
  const std::vector<std::string>& paths() const { return paths_; }
  // Sets `key` (a later value of the same key replaces the earlier, as fsspec's dict update).
  void set(std::string_view key, const Row& row);
  const Row* find(std::string_view key) const;
  bool erase(std::string_view key);  // true when it was there
  std::size_t size() const { return live_; }
  // Calls f(key, row) for each key, in the order first set.
  template <typename F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < rows_.size(); ++i)
      if (alive_[i]) f(key_of(i), rows_[i]);
  }
  // A Reference of `row` (its path as text), for callers that want one.
  Reference reference(const Row& row) const;

 private:
  std::string_view key_of(std::size_t i) const {
    const uint64_t begin = i ? key_end_[i - 1] : 0;
    return std::string_view(keys_).substr(begin, key_end_[i] - begin);
  }
  std::size_t slot_of(std::string_view key) const;  // its slot, or the empty slot it would take
  void grow();

  std::string keys_;
  std::vector<uint64_t> key_end_;
  std::vector<Row> rows_;
  std::vector<bool> alive_;
  std::vector<uint32_t> slots_;  // open addressing: row + 1, 0 = empty
  std::size_t live_ = 0;
  std::vector<std::string> paths_;
  std::unordered_map<std::string, uint32_t> path_ids_;
};

// Keys with references: `explicit_refs` (metadata, inline data, listed objects, references
// written out one by one) and `generated` (kerchunk "gen" entries; metadata keys, whose last part
// starts with '.' or is zarr.json, are never generated rows but explicit ones, so that walking the
// explicit keys finds every .zarray / .zgroup / zarr.json). A key is in one of the two at most.
struct ReferenceSet {
  std::map<std::string, Reference> explicit_refs;
  GeneratedReferences generated;

  // The reference of `key`, nullopt when absent (a generated one with its path as text).
  std::optional<Reference> get(const std::string& key) const;
  bool contains(const std::string& key) const;
  // Sets an explicit reference (replacing a generated one of that key).
  void set(const std::string& key, Reference r);
  // A generated reference of `key` (replacing an explicit one of that key).
  // (`row.path` numbers a path of `generated`.)
  void set_generated(const std::string& key, const GeneratedReferences::Row& row);
  std::size_t size() const { return explicit_refs.size() + generated.size(); }
  // The keys under `prefix`, with it taken off: a group's keys as a store of their own.
  ReferenceSet below(const std::string& prefix) const;
};

}  // namespace zp
