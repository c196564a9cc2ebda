// Planner stage 2: a worker's predicted peak memory, and the work units that keep it within the
// memory limit.
#pragma once

#include <cstdint>

#include "plan/plan.hpp"
#include "plan/plan_options.hpp"

namespace zp {

// Memory a worker process uses before any chunk: code, libraries, the plan.
inline constexpr uint64_t kWorkerBaseBytes = 40ull << 20;

// Predicted peak bytes of a worker writing `a` with the given unit choice; `remote`: its source
// chunks are fetched in batches of kRemoteBatchBytes before decoding.
uint64_t predicted_peak(const ArrayPlan& a, int threads, bool remote = false);

// Chooses per-dimension units (a.per_chunk_units) so the predicted peak fits; throws
// Error(Config) when even one output chunk does not fit the memory limit.
void fit_units(ArrayPlan& a, const PlanOptions& opt, bool remote);

}  // namespace zp
