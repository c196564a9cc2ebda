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

// The command line lets scanners be forks of the coordinator (the Python module does not: its
// interpreter is never forked): a fork skips loading the program (~15 ms of CPU a child).
void allow_forked_scanners(bool allow);
// Whether children scan as forks: allowed, this process runs one thread (a fork copies only the
// calling thread), and ZP_FORK_SCANNERS is not 0. A fork is a process of its own, as an exec'd
// scanner: a libhdf5 crash or hang in it costs its run of files, which the caller scans again.
bool scanners_forked();

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

// Runs `zarr-parallel scan-parts` on each run of files at once (with --join when `join`, along
// `concat_dim`, or when empty each run's first file's unlimited dimension) and collects what each
// printed.
std::vector<ChildOutput> run_scan_children(const std::vector<std::vector<std::string>>& runs,
                                           const std::string& group, bool join,
                                           const std::string& concat_dim);

}  // namespace zp
