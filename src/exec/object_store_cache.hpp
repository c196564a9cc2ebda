// A cache run whose store is an S3 prefix (cache_store: s3://bucket/prefix/x.zarr): the same
// steps as a store on a file system, through the Writable interface — a prefix holding objects
// without our marker is refused; the marker is claimed with put-if-absent and the lease object
// taken (StoreLease) before anything is written; a complete store of the same config is a hit; an
// unfinished one of the same config is continued (its done records are objects); any other is
// rewritten in place after its consolidated metadata and completion marker are deleted first, so
// a reader gets an error rather than a mix. The consolidated metadata and completion marker are
// written last. deploy_mode series runs the jobs in this process; local in worker processes that
// write to the prefix themselves (object_store_workers.hpp); slurm in array tasks that read the
// plan from the prefix (object_store_slurm.hpp); mpi and dask_distributed through an executor
// their caller gives (MPI's rank 0, the Python module). The lease is renewed by a timer; a lost
// one stops local workers at once. Multipart uploads left by killed workers are aborted after the
// workers are gone, and in series and local runs before data is written (orphan_uploads.hpp).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "exec/cache_run.hpp"
#include "write/store_state.hpp"

namespace zp {

// The jobs left of a run on S3, as an executor gets them: its workers need only plan_url and
// plan_sha256 (the plan as this coordinator wrote or checked it).
struct ObjectStoreJobs {
  const Writable& store;
  const StoreState& state;
  const Plan& plan;
  const std::vector<int64_t>& pending;
  std::string plan_url, plan_sha256;
};

// Runs the pending jobs while the coordinator holds the claim and the lease; the store is
// finished when it returns (an Error leaves it resumable).
using ObjectStoreExecutor = std::function<void(const ObjectStoreJobs&)>;

// `exec`: the executor of deploy_mode mpi or dask_distributed (required for them).
int run_object_store_cache(const Config& cfg, const CacheOptions& opt,
                           const ObjectStoreExecutor& exec = {});

// Why a deploy mode cannot write to S3 from here: the modes that can, and where.
inline constexpr const char* kObjectStoreModes =
    "a cache_store on S3 is written in deploy_mode series, local, slurm, mpi (every rank under "
    "mpirun) and dask_distributed (from the Python module)";

}  // namespace zp
