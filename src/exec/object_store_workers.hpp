// deploy_mode local on a store on S3: the pending jobs run in worker processes (exec'd
// `zarr-parallel worker`: the coordinator's lease thread rules out forks) that write chunks and
// done records straight to the prefix, while the coordinator keeps the claim and the lease and
// writes the metadata and completion marker last (object_store_cache.cpp). What is not the store's
// stays off the bucket, in a private scratch folder (mkdtemp under $TMPDIR, mode 0700): the plan
// file the workers load, their logs and heartbeats (copies of those are mirrored into the prefix
// for `status`, HeartbeatMirror). It is removed when the run ends; when jobs
// failed it is kept for their logs, and the message says where. The store's options and secrets
// reach the workers through a SecretsChannel (AccessOptions::store), never a plan file, argv or
// a log.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "config/config.hpp"
#include "plan/plan.hpp"
#include "write/store_state.hpp"

namespace zp {

// `check_lease` is called about once a second: what it throws (the lease lost) stops every
// worker at once and ends the run with that error. The workers' heartbeats are mirrored into
// `store`'s side folder meanwhile (HeartbeatMirror), for `status`.
void run_local_on_object_store(const StoreState& state, const Plan& plan,
                               const std::vector<int64_t>& pending, const Config& cfg,
                               const Writable& store, const std::function<void()>& check_lease);

}  // namespace zp
