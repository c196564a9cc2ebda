// The key that signs manifest cache entries (HMAC-SHA256): 32 random bytes made on first use, in a
// file only this user can read. Whoever can write a shared ZP_CACHE_DIR can still write entries,
// but not sign them: an entry not signed with this key is ignored and its files scanned again.
// An HMAC rather than ssh's owner and mode checks on the entries: those hold only where the file
// system keeps owners and modes (not on many NFS exports with root squash or uid mapping, nor
// on object stores), and an owner check alone accepts a file of ours moved into place.
#pragma once

#include <optional>
#include <string>

namespace zp {

// Where the key lives: the user's own cache folder ($XDG_CACHE_HOME/zarr-parallel or
// ~/.cache/zarr-parallel, "manifest-key"), never a shared ZP_CACHE_DIR; without XDG_CACHE_HOME
// and HOME, or when that folder cannot hold it, `cache_base`/manifest-key-<uid>.
// The key, made if absent (O_EXCL | O_NOFOLLOW, mode 0600, linked into place whole), read only from
// a regular file this user owns that no one else may read or write, of exactly 32 bytes: else
// nullopt (the cache is off for this run; `why` says why). Read once a process.
std::optional<std::string> manifest_cache_key(const std::string& cache_base, std::string* why);

}  // namespace zp
