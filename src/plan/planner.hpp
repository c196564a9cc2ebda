// The planner: a pure function from the dataset description and manifest, the resolved selection
// and the config to a Plan. No I/O, no threads. Invariants (checked by tests/unit/planner_test):
// every output chunk is in exactly one job; job regions are unions of work units, so a source
// chunk is read by one job whenever the memory limit allows units that read each chunk once;
// the predicted peak memory per worker (decoder and encoder buffers counted) is within the limit.
// Its stages, one file each: arrays (which output arrays, plan/arrays), their encoding runs
// (plan/encoding_runs), memory (plan/memory), jobs (plan/jobs).
#pragma once

#include "config/config.hpp"
#include "plan/arrays.hpp"
#include "plan/jobs.hpp"
#include "plan/memory.hpp"
#include "plan/plan.hpp"
#include "plan/plan_options.hpp"

namespace zp {

Plan make_plan(const Dataset& ds, const Selection& sel, const Config& cfg, const PlanOptions& opt);

}  // namespace zp
