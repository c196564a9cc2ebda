// A cache run whose store is an S3 prefix (cache_store: s3://bucket/prefix/x.zarr): the same
// steps as a store on a file system, through the Writable interface — a prefix holding objects
// without our marker is refused; the marker is claimed with put-if-absent and the lease object
// taken (StoreLease) before anything is written; a complete store of the same config is a hit; an
// unfinished one of the same config is continued (its done records are objects); any other is
// rewritten in place after its consolidated metadata and completion marker are deleted first, so
// a reader gets an error rather than a mix. The consolidated metadata and completion marker are
// written last. deploy_mode series runs the jobs in this process; local in worker processes that
// write to the prefix themselves (object_store_workers.hpp). The lease is renewed by a timer; a
// lost one stops local workers at once. Multipart uploads left by killed workers are aborted
// before data is written and after the workers are gone (orphan_uploads.hpp).
#pragma once

#include "config/config.hpp"
#include "exec/cache_run.hpp"

namespace zp {

int run_object_store_cache(const Config& cfg, const CacheOptions& opt);

// Why another deploy mode cannot write to S3 (yet): the modes that can.
inline constexpr const char* kObjectStoreModes =
    "a cache_store on S3 is written in deploy_mode series or local (from the command line or "
    "the Python module); slurm, mpi and dask_distributed cannot write to S3 yet: use a shared "
    "file system for them";

}  // namespace zp
