// The manifest cache: what scanning a NetCDF file yields (its description, manifest and the
// coordinate values the join compares), kept per source — one entry for a whole glob, holding each
// file's part with the size and modification time it was scanned at — plus the joined dataset of
// the file list. A re-plan, resume, status or verify of thousands of unchanged files reads one
// joined entry; after a day is appended, only the new file is scanned. One file per source, not
// per NetCDF file: creating thousands of small files cost more than the scan on local disks and
// costs far more on parallel file systems. Entries live in ZP_CACHE_DIR (default
// $XDG_CACHE_HOME/zarr-parallel or ~/.cache/zarr-parallel), under parts/; ZP_CACHE_DIR=off
// disables it. Entries are written to a new temporary file (O_EXCL | O_NOFOLLOW, random name) and
// renamed: readers never see half of one, and a link planted in a shared cache folder is never
// followed. Each entry starts with the scanner's identity and an HMAC of its name and the rest with
// the user's own key (cache_key.hpp): a damaged, edited, forged or renamed entry is ignored (noted
// at log level 2) and its files are scanned again; without a key the cache is off.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "source/dataset.hpp"

namespace zp {

// A file's join values above this size are not kept (the join then reads the coordinate's chunks).
constexpr std::size_t kMaxJoinValueBytes = std::size_t{64} << 20;

struct ScanPart {
  Dataset ds;
  // SHA-256 of each 1-D dimension coordinate's values (as doubles): the join checks that files
  // agree on every coordinate but concat_dim's, and equal digests say so without keeping values.
  std::map<std::string, std::string> coord_digests;
  // Native values of the coordinate of each unlimited dimension (the default concat_dim): the
  // join holds the joined coordinate inline, so planning and writing it open no file again (a
  // warm plan of 1,000 daily files opened and read all 1,000 for their `time`).
  std::map<std::string, Bytes> join_values;
};

// "" when the cache is off.
std::string scan_cache_dir();
// Log level for the notes about ignored entries (printed at 2 and above).
void set_scan_cache_log_level(int level);
// Turns the cache off for this process and its scan children: `verify` reads the sources
// themselves, never what a cache entry says they hold.
void bypass_scan_cache();
// The file's size and mtime now ({-1, 0} when it cannot be stat'ed).
std::pair<int64_t, int64_t> file_state(const std::string& path);

// One part as three lines of text (a header naming the file and its state, the join coordinates,
// the dataset), the form of the cache entries and of what `zarr-parallel scan-parts` children
// print.
std::string part_lines(const std::string& path, const ScanPart& part,
                       std::pair<int64_t, int64_t> state);

// The parts of one source (`uri` as the user gave it, `group`). With the cache off it still holds
// what is put into it, for this run.
class PartCache {
 public:
  PartCache(const std::string& uri, const std::string& group);
  bool enabled() const { return !entry_.empty(); }
  // The part of `path` when the entry holds it and the file is as it was scanned; the part names
  // the file as `path` spells it.
  std::optional<ScanPart> get(const std::string& path);
  // Whether get() would find `path` (without parsing its part), and its part's coordinates only.
  bool has(const std::string& path);
  std::optional<std::map<std::string, std::string>> get_coords(const std::string& path);
  // `state`: the file's file_state() taken before it was scanned.
  void put(const std::string& path, const ScanPart& part, std::pair<int64_t, int64_t> state);
  // Reads parts in part_lines() form (children's output) into the cache; false if malformed.
  bool put_lines(const std::string& text);
  // Writes the entry when anything was put, keeping only `files` (files gone from the glob drop
  // out).
  void save(const std::vector<std::string>& files);

 private:
  struct Item {
    std::string as;
    int64_t size = 0, mtime_ns = 0;
    std::string header, coords, body;  // the part's lines, parsed on use
  };
  std::string entry_;
  std::string group_;
  std::map<std::string, Item> items_;  // by absolute path
  bool dirty_ = false;
};

// The joined dataset of a whole file list (what the netcdf engine makes of a glob). Keyed by the
// files (as given and absolute, in order, each with its size and mtime), the group, concat_dim and
// the build: any touched, added or removed file is a miss (the per-file parts still serve).
// join_key() is taken before the files are scanned; store_join stores nothing if they changed, and
// removes the entries of earlier states of the same source (`uri`, group, concat_dim, build).
std::string join_key(const std::string& uri, const std::vector<std::string>& files,
                     const std::string& group, const std::string& concat_dim);
std::optional<Dataset> cached_join(const std::string& key, const std::vector<std::string>& files);
void store_join(const std::string& key_before, const std::string& uri,
                const std::vector<std::string>& files, const std::string& group,
                const std::string& concat_dim, const Dataset& ds);

// The program that scans files in child processes (`zarr-parallel scan-parts`, with
// unless ZP_PARALLEL_SCAN=0); "" = none (then files are scanned one after another in this process).
void set_scan_executable(const std::string& path);
const std::string& scan_executable();

}  // namespace zp
