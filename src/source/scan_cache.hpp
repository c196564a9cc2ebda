// The manifest cache: what scanning one NetCDF file yields (its description, manifest and the
// coordinate values the join compares) kept as JSON per file, keyed by path, group and tool
// version and valid while the file's size and modification time are what they were. A re-plan,
// resume, status or verify of thousands of unchanged files then reads parts instead of opening
// files. Parts live in ZP_CACHE_DIR (default $XDG_CACHE_HOME/zarr-parallel or
// ~/.cache/zarr-parallel), under parts/; ZP_CACHE_DIR=off disables it. Entries are written to a
// temporary name and renamed, so concurrent scanners never see half an entry.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "source/dataset.hpp"

namespace zp {

struct ScanPart {
  Dataset ds;
  std::map<std::string, std::vector<double>> coord_values;  // 1-D coordinates, for the join check
};

// "" when the cache is off.
std::string scan_cache_dir();
// The file's size and mtime now ({-1, 0} when it cannot be stat'ed).
std::pair<int64_t, int64_t> file_state(const std::string& path);
// The cached part of `path` when its entry matches the file as it is now; the part names the file
// as `path` spells it.
std::optional<ScanPart> cached_part(const std::string& path, const std::string& group);
// `state`: the file's file_state() taken before it was scanned (a file changed while it was
// scanned is not cached).
void store_part(const std::string& path, const std::string& group, const ScanPart& part,
                std::pair<int64_t, int64_t> state);

// The joined dataset of a whole file list (what the netcdf engine makes of a glob), so that a warm
// re-plan of thousands of files reads one entry instead of one part per file. Keyed by the files
// (as given and absolute, in order, each with its size and mtime), the group, concat_dim and the
// build: any touched, added or removed file is a miss (its per-file parts still serve).
std::optional<Dataset> cached_join(const std::vector<std::string>& files, const std::string& group,
                                   const std::string& concat_dim);
// `key_before`: join_key() taken before the files were scanned (nothing stored if they changed).
std::string join_key(const std::vector<std::string>& files, const std::string& group,
                     const std::string& concat_dim);
void store_join(const std::string& key_before, const std::vector<std::string>& files,
                const std::string& group, const std::string& concat_dim, const Dataset& ds);

// The program that scans files in child processes (`zarr-parallel scan-parts`, with
// ZP_PARALLEL_SCAN=1); "" = none (then files are scanned one after another in this process).
void set_scan_executable(const std::string& path);
const std::string& scan_executable();

}  // namespace zp
