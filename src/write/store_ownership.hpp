// Whose folder is it? A cache store is ours only when it carries the marker written when we created
// it (`.zarr-parallel/store.json` with a store id). Everything else — a user's folder, the current
// directory, a folder of sources, a source store — is never deleted, replaced or written into.
// Replacements are built in a sibling staging store and swapped in by rename when complete.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace zp {

enum class TargetKind {
  Absent,   // nothing at the path
  Empty,    // an empty folder: claimed when the store is created there
  Ours,     // a store we created (marker present)
  Foreign,  // anything else: refused
};

struct TargetState {
  TargetKind kind = TargetKind::Absent;
  std::string why;            // for Foreign: what is there
  bool being_created = false;  // Foreign, but only our side folder without its marker yet: another
                               // run may be creating the store this instant (ask the lock)
};

// Absolute, normalised, symlinks of existing parts resolved (so two spellings compare equal).
std::string canonical_path(const std::string& path);

TargetState classify_target(const std::string& path);

// The id in a store's marker, when it is ours.
std::optional<std::string> store_id_of(const std::string& root);

// Creates the store folder (it must be absent, or an empty folder) with its marker; returns the
// new store id. Error(Store) when something else appeared there meanwhile.
std::string create_store(const std::string& root);

// Refuses (Error(Store), exit 5) when `target` is, is inside, or contains any of `sources`.
void check_not_source(const std::string& target, const std::vector<std::string>& sources,
                      const std::string& role = "cache_store");

// Where a replacement of `target` is built: `.NAME.zp-new` beside it.
std::string staging_path_for(const std::string& target);

// Where swap_in keeps the old store for a moment on file systems without an atomic exchange.
std::string retired_path_for(const std::string& target);

// Refuses (Error(Store), exit 5) a store of ours holding anything zarr-parallel did not write (see
// store_inventory.hpp); `consequence` says what was not done ("replacing it would delete them").
void check_all_ours(const std::string& root, const std::string& consequence);

// Deletes a store of ours; refuses (Error(Store)) anything without our marker, and a store holding
// anything zarr-parallel did not write.
void remove_our_store(const std::string& root);

// Moves the complete store at `staging` to `target`, replacing the store of ours there (atomic
// exchange where the file system offers it), then deletes the old one.
void swap_in(const std::string& staging, const std::string& target);

}  // namespace zp
