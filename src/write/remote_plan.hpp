// A plan saved in a store on S3 (s3://bucket/prefix/.zarr-parallel/plan.json), as SLURM, MPI and
// dask workers take it: they need only its URL. The store is untrusted (whoever can write the
// bucket can rewrite plan.json and the digest in state.json), so the SHA-256 the coordinator read
// is required and checked, as for a plan file a local worker is handed: an edited plan, which
// could name a local file of the worker's host as a source, is refused whole.
#pragma once

#include <string>

#include "plan/plan.hpp"
#include "store/storage_options.hpp"

namespace zp {

// Whether `path` names a plan in a store on S3 (an s3:// URL).
bool is_remote_plan(const std::string& path);

// The plan at `url`, read with the store options the coordinator handed this process (`handed`:
// its options, their secrets from the run's secrets channel or the worker's AWS environment;
// never the plan's), checked against `sha256` (required). The plan's store is the URL's, its
// store options the handed ones.
Plan load_remote_plan(const std::string& url, const std::string& sha256,
                      const AccessOptions& handed);

// The access a worker is handed for a plan on S3: `store_options_json` (the store's public
// options from the coordinator: endpoint, region; refused if it holds a secret), then the run's
// secrets channel, which carries the coordinator's whole access when it has secrets.
AccessOptions handed_store_access(const std::string& store_options_json);

}  // namespace zp
