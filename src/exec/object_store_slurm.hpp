// deploy_mode slurm on a store on S3. The array tasks read the plan from the prefix
// (`worker s3://.../.zarr-parallel/plan.json --plan-sha256 HEX --store-options {endpoint...}`) and
// write chunks, done records and their heartbeats there, so `status s3://...` and the coordinator
// see live workers. What sbatch needs as files — the job scripts, task lists, submissions and the
// tasks' logs — goes to a scratch folder on a file system the nodes share: `slurm.scratch` (default
// ./zarr-parallel-slurm), one folder per store (named by a digest of its URL and id), so a run that
// resumes a submit-only run finds its submissions; the name is predictable, so a folder by that
// name that is not ours and private is refused (store/private_folder.hpp). Removed when the run
// completes; kept, and said, when jobs failed or were only submitted. Credentials: the tasks' own
// environment (sbatch exports the submitter's: AWS_*, AWS_PROFILE), and secrets given in the config
// through the run's secrets channel, an 0600 file in that folder: never in the plan, the script,
// argv or the bucket.
#pragma once

#include "config/config.hpp"
#include "exec/object_store_cache.hpp"

namespace zp {

// False when the jobs were only submitted (await_completion: false).
bool run_slurm_on_object_store(const ObjectStoreJobs& jobs, const Config& cfg);

}  // namespace zp
