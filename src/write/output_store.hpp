// The store a worker writes into, known from its plan alone: the plan's folder, or its S3 prefix
// reached with the cache store's options as the coordinator handed them (AccessOptions::store,
// its secrets through the secrets channel, never the plan's), so every executor's workers open
// the same Writable the coordinator does.
#pragma once

#include <memory>

#include "plan/plan.hpp"
#include "store/writable.hpp"

namespace zp {

std::unique_ptr<Writable> open_output_store(const Plan& plan);

}  // namespace zp
