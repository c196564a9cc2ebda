// Forked workers: on a small run, local workers are forks of the coordinator that run the plan it
// already holds, without exec. An exec'd worker pays a process start (loading some 56 shared
// libraries) and a read and check of plan.json before its first chunk, fixed costs that were a
// third of a one-file run. A forked worker keeps everything else an exec'd one has: its own
// process (a crash or a kill costs one job, which is run again), its socket, heartbeats, done
// markers, its log, and death with its coordinator.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "plan/plan.hpp"

namespace zp {

// Whether this run's local workers may be forks: `jobs` (pending) are at most two per worker and
// read and write at most kForkedRunBytes together, this process runs a single thread (a fork
// copies only the calling thread, and a lock another one held would stay locked), and `exec_set`
// is false (the Python module names the worker executable: its interpreter is not forked).
// ZP_FORK_WORKERS=0 turns it off, =1 drops the size limits (for measuring both ways).
bool may_fork_workers(const Plan& plan, const std::vector<int64_t>& jobs, int workers,
                      bool exec_set);

inline constexpr uint64_t kForkedRunBytes = uint64_t{1} << 30;

// In the forked child: serves jobs from socket `fd` as `zarr-parallel worker --jobs-from-fd`
// would, then exits with that command's exit code. Never returns. `local_root`, `plan_sha256`: as
// serve_worker_jobs's.
[[noreturn]] void run_forked_worker(const Plan& plan, int threads, const std::string& worker_id,
                                    int fd, const std::string& local_root,
                                    const std::string& plan_sha256);

}  // namespace zp
