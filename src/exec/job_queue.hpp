// JobQueue: the queue SLURM's array tasks share in the store's side folder
// (`.zarr-parallel/slurm/queue/`), so that a task that finishes early takes more work. The
// coordinator writes `order.txt` (the job ids to run, largest first, a line each); a task takes a
// job by creating `claims/JOB` (a copy: `claims/JOB.copy`) with put_if_absent: the claim is written
// whole into a temporary file, then link(2)ed to its name, which fails when the name exists, so of
// tasks racing for a job exactly one gets it, on a local file system, NFS and Lustre alike. The
// claim names its task and when it started the job. A claim whose task is gone is removed by the
// coordinator (the job is queued again). Everything read here is untrusted: bounded reads, names
// and fields checked.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "store/file_store.hpp"

namespace zp {

struct Claim {
  std::string task;    // a worker id: [A-Za-z0-9_.-], at most 128 characters; "" unreadable
  double started = 0;  // when the task took the job (seconds since the epoch; 0 unreadable)
};

class JobQueue {
 public:
  // `root`: the folder of the run's own files (the store's, on the shared file system);
  // `plan_jobs`: the plan's job count (every id read is checked against it).
  JobQueue(const std::string& root, std::size_t plan_jobs);

  static constexpr const char* kFolder = ".zarr-parallel/slurm/queue";
  // The path of a queue file (for messages).
  std::string path_of(const std::string& name) const;

  // The coordinator: the jobs to run, in order (replaces an earlier order).
  void write_order(const std::vector<int64_t>& jobs) const;
  // The order; Error(Store) naming the file when it is not one (a job id outside the plan).
  std::vector<int64_t> order() const;

  // Takes `job` (its copy with `copy`) for `task`; false when another task has it.
  bool claim(int64_t job, bool copy, const std::string& task, double started) const;
  // The claims there are: job → claim, and the jobs that have a copy claim. Claims of jobs in
  // `skip` (done ones) are left out unread: one listing, then a small read a claim.
  struct Claims {
    std::map<int64_t, Claim> first;
    std::map<int64_t, Claim> copies;
  };
  Claims claims(const std::set<int64_t>& skip = {}) const;
  // Removes a claim (its task is gone): the job can be taken again.
  void release(int64_t job, bool copy) const;

 private:
  std::optional<Claim> read_claim(const std::string& name) const;
  FileStore store_;
  std::size_t plan_jobs_;
};

// A worker id as a claim or a heartbeat file may name it: letters, digits, '_', '-', '.'.
bool valid_task_name(const std::string& task);

// Job ids with a done marker, from one listing of the side folder's `jobs/` (at most
// `plan_jobs` + 4096 names read).
std::set<int64_t> done_jobs_listed(const class StoreState& state, std::size_t plan_jobs);

}  // namespace zp
