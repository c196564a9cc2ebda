#include "write/store_ownership.hpp"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <unordered_map>

#include "core/error.hpp"
#include "store/file_store.hpp"
#include "store/pending_flushes.hpp"
#include "write/store_claim.hpp"
#include "write/store_inventory.hpp"
#include "write/store_state.hpp"

namespace zp {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kMarkerFormat = "zarr-parallel-store";

std::string marker_path(const std::string& root) {
  return (fs::path(root) / StoreState::kFolder / "store.json").string();
}

std::string random_id() {
  std::random_device rd;
  std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(getpid()));
  char buf[33];
  snprintf(buf, sizeof buf, "%016llx%016llx", static_cast<unsigned long long>(gen()),
           static_cast<unsigned long long>(gen()));
  return buf;
}

// `inner` equals `outer` or lies inside it (both canonical).
bool within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // a trailing separator
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

}  // namespace

std::string canonical_path(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path, ec), ec);
  if (ec) p = fs::absolute(path).lexically_normal();
  std::string s = p.string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// Read as any bookkeeping file: beneath the root, no link followed, at most its size bound.
std::optional<std::string> store_id_of(const std::string& root) {
  return store_id_in(FileStore(root));
}

TargetState classify_target(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return {TargetKind::Absent, ""};
    return {TargetKind::Foreign, std::string("cannot be examined: ") + errno_text(errno)};
  }
  if (S_ISLNK(st.st_mode)) return {TargetKind::Foreign, "is a symbolic link"};
  if (!S_ISDIR(st.st_mode)) return {TargetKind::Foreign, "exists and is not a folder"};
  if (store_id_of(path)) return {TargetKind::Ours, ""};
  std::error_code ec;
  if (fs::is_empty(path, ec) && !ec) return {TargetKind::Empty, ""};
  if (fs::exists(fs::path(path) / StoreState::kFolder, ec)) {
    int entries = 0;
    for (auto it = fs::directory_iterator(path, ec); !ec && it != fs::directory_iterator();
         it.increment(ec))
      ++entries;
    return {TargetKind::Foreign,
            "has a .zarr-parallel folder but no store marker (made by an older zarr-parallel?): "
            "delete it yourself if it is a cache you no longer need",
            entries == 1};
  }
  return {TargetKind::Foreign, "is a folder that zarr-parallel did not create"};
}

namespace {
std::string parent_of(const std::string& path) {
  const fs::path p = fs::path(path).parent_path();
  return p.empty() ? std::string(".") : p.string();
}
}  // namespace

std::string create_store(const std::string& root) {
  std::error_code ec;
  fs::create_directories(fs::path(root).parent_path(), ec);
  if (::mkdir(root.c_str(), 0755) != 0) {
    const int err = errno;
    if (err != EEXIST)
      throw Error::store(root, "cannot create the store folder: " + errno_text(err));
    if (!fs::is_directory(root, ec) || !fs::is_empty(root, ec))
      throw Error::store(root,
                         "something appeared at the store's path while planning; refusing "
                         "to write there");
  }
  const std::string side = (fs::path(root) / StoreState::kFolder).string();
  if (::mkdir(side.c_str(), 0755) != 0)
    throw Error::store(root, "cannot create " + side + ": " + errno_text(errno));
  const std::string id = random_id();
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const std::string text = json{
      {"format", kMarkerFormat},
      {"store_id", id},
      {"host", host},
      {"pid", getpid()},
      {"tool_version",
       ZP_VERSION}}.dump(2);
  // O_EXCL: a marker that is already there was not written by this run.
  const std::string marker = marker_path(root);
  const int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error::store(root, "cannot create " + marker + ": " + errno_text(errno));
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    const int err = errno;
    ::close(fd);
    throw Error::store(root, "cannot write " + marker + ": " + errno_text(err));
  }
  flush_and_close(fd, marker);
  // The store and its marker survive a crash before anything is written into it.
  sync_path(side);
  sync_path(root);
  sync_path(parent_of(root));
  return id;
}

void check_not_source(const std::string& target, const std::vector<std::string>& sources,
                      const std::string& role) {
  const fs::path t(canonical_path(target));
  // Sources are mostly many files in a few folders: a file that is no symbolic link, named without
  // "." or "..", is its folder's canonical path plus its name, and each folder is resolved once
  // (7,300 files each resolved component by component were 7,300 x 2 walks; on a parallel file
  // system every step is a metadata round trip).
  std::unordered_map<std::string, std::string> folders;
  auto canonical_source = [&](const std::string& s) {
    std::error_code ec;
    const fs::path a = fs::absolute(s, ec);
    struct stat st {};
    if (ec || !a.has_filename() ||
        std::any_of(a.begin(), a.end(), [](const fs::path& c) { return c == "." || c == ".."; }) ||
        ::lstat(a.c_str(), &st) != 0 || S_ISLNK(st.st_mode))
      return canonical_path(s);
    const std::string parent = a.parent_path().string();
    auto it = folders.find(parent);
    if (it == folders.end()) it = folders.emplace(parent, canonical_path(parent)).first;
    return (fs::path(it->second) / a.filename()).string();
  };
  for (const auto& s : sources) {
    if (s.empty() || s.find("://") != std::string::npos) continue;
    const fs::path p(canonical_source(s));
    const char* how = t == p ? "is" : within(t, p) ? "is inside" : within(p, t) ? "contains" : "";
    if (*how)
      throw Error::store(target, role + " " + how + " the source " + p.string() +
                                     "; a cache never replaces or writes into its own source "
                                     "(choose another cache_store)");
  }
}

std::string staging_path_for(const std::string& target) {
  const fs::path t(target);
  return (t.parent_path() / ("." + t.filename().string() + ".zp-new")).string();
}

std::string retired_path_for(const std::string& target) {
  const fs::path t(target);
  return (t.parent_path() / ("." + t.filename().string() + ".zp-old")).string();
}

void check_all_ours(const std::string& root, const std::string& consequence) {
  const ForeignEntries f = entries_not_ours(root);
  if (f.count)
    throw Error::store(root, "holds " + f.describe() + ", which zarr-parallel did not write; " +
                                 consequence +
                                 ": move them out of the store, or delete it yourself");
}

void remove_our_store(const std::string& root) {
  if (!store_id_of(root))
    throw Error::store(root, "is not a store made by zarr-parallel; refusing to delete it");
  check_all_ours(root, "not deleting the store");
  std::error_code ec;
  fs::remove_all(root, ec);
  if (ec) throw Error::store(root, "cannot remove the old store: " + ec.message());
}

namespace {

// Deletes the old store, moved to `old` once the new one is in place at `target`; keeps it when
// something of the user's appeared in it while the new one was built.
void retire(const std::string& old, const std::string& target) {
  try {
    remove_our_store(old);
  } catch (const Error& e) {
    throw Error::store(target,
                       "the new cache is complete and in place, but the old store, now at " + old +
                           ", was kept: " + e.what());
  }
}

}  // namespace

void swap_in(const std::string& staging, const std::string& target) {
  if (!store_id_of(staging))
    throw Error::store(staging, "the staged store has lost its marker; not swapping it in");
  const TargetState t = classify_target(target);
  if (t.kind == TargetKind::Foreign)
    throw Error::store(target, t.why + " now; the new cache stays at " + staging);
  if (t.kind == TargetKind::Absent ||
      (t.kind == TargetKind::Empty && ::rmdir(target.c_str()) == 0)) {
    if (::rename(staging.c_str(), target.c_str()) != 0)
      throw Error::store(target, "cannot move the new store into place: " + errno_text(errno));
    sync_path(parent_of(target));
    return;
  }
  // One atomic step: readers see the old complete store or the new complete one.
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) != 0) {
    if (errno != EINVAL && errno != ENOSYS)
      throw Error::store(target, "cannot swap in the new store: " + errno_text(errno));
    // No exchange on this file system: two renames, the old store kept until the new is in.
    const std::string old = retired_path_for(target);
    if (classify_target(old).kind == TargetKind::Ours) remove_our_store(old);
    if (::rename(target.c_str(), old.c_str()) != 0)
      throw Error::store(target, "cannot move the old store aside: " + errno_text(errno));
    if (::rename(staging.c_str(), target.c_str()) != 0) {
      const int err = errno;
      ::rename(old.c_str(), target.c_str());
      throw Error::store(target, "cannot move the new store into place: " + errno_text(err));
    }
    sync_path(parent_of(target));
    retire(old, target);
    return;
  }
  sync_path(parent_of(target));
  retire(staging, target);  // now the old store
}

}  // namespace zp
