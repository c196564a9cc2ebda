// Planner stage 3: jobs, unions of work units split along the first dimensions first, and the
// plan's summary (bytes read, needed and written, read amplification).
#pragma once

#include "plan/plan.hpp"
#include "plan/plan_options.hpp"

namespace zp {

// Splits the arrays into work units and jobs; fills plan.jobs and plan.summary. Throws
// Error(Config) when even one output chunk does not fit the memory limit.
void plan_jobs(Plan& plan, const PlanOptions& opt);

}  // namespace zp
