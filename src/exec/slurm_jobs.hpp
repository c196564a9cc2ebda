// Which SLURM jobs are ours. A job id read from the store (submissions.json, which anyone who can
// write the store's side folder can rewrite) is untrusted: the coordinator follows a job, counts
// its tasks as workers or cancels it only when squeue shows it owned by our effective uid and
// named for this store and plan (sbatch --job-name). Each scancel carries the same filters, so a
// job id SLURM gave to someone else's job meanwhile is not cancelled either. No shell: argv only.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "exec/executor.hpp"

namespace zp {

struct SlurmIdentity {
  std::string uid;   // our effective uid, as squeue's %U prints it and scancel --user takes it
  std::string name;  // "zarr-parallel-" and 16 hex digits of SHA-256(store id, plan digest)
};

// This run's identity: the store's id and the digest of the plan it hands its workers.
SlurmIdentity slurm_identity(const RunContext& ctx);

struct SlurmTasks {
  std::set<int64_t> active;  // our tasks of the array that SLURM holds queued or running
  std::string foreign;       // "" or what squeue says of a task of that id that is not ours
};

// The tasks of array job `id` ("ID_3 RUNNING", "ID_[4-7%2] PENDING", with their uid and name);
// a job SLURM no longer knows has none. Throws Error(Job) when squeue fails otherwise.
SlurmTasks slurm_tasks(const std::string& id, const SlurmIdentity& me);

// scancel of `target` ("ID" or "ID_T"), only if it is still ours (--user, --name).
void scancel_ours(const std::string& target, const SlurmIdentity& me);

}  // namespace zp
