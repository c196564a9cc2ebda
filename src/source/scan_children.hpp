// Many files not in the cache, scanned by K child processes at once (HDF5 and netCDF-C are not
// thread-safe; `zarr-parallel scan-parts`) that print their parts (part_lines) to a pipe, drained
// here as they fill. A child silent for the scan time limit is killed (libhdf5 loops on some
// damaged files); what it did not finish is described again by the caller, naming the file.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace zp {

// Below this many files, one child scans them all.
constexpr std::size_t kParallelScanMin = 8;

// On unless ZP_PARALLEL_SCAN=0 (and when the program can run itself as a scanner).
bool parallel_scan_on();
// How many children scan `n` files: one per core (at most 8), at least 4 files each.
std::size_t scan_children_for(std::size_t n);
// The length of the complete parts (three lines each, see part_lines) at the start of `out`.
std::size_t complete_parts(const std::string& out);

struct ChildOutput {
  std::string out;
  bool ok = false;  // exited 0
};

// Runs `zarr-parallel scan-parts` on each run of files at once (with --join when `concat_dim` is
// set) and collects what each printed.
std::vector<ChildOutput> run_scan_children(const std::vector<std::vector<std::string>>& runs,
                                           const std::string& group, const std::string& concat_dim);

}  // namespace zp
