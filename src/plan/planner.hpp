// The planner: a pure function from the dataset description and manifest, the resolved selection
// and the config to a Plan. No I/O, no threads. Invariants (checked by tests/unit/planner_test):
// every output chunk is in exactly one job; job regions are unions of work units, so a source
// chunk is read by one job whenever the memory limit allows units that read each chunk once;
// the predicted peak memory per worker (decoder and encoder buffers counted) is within the limit.
#pragma once

#include <cstdint>
#include <vector>

#include "config/config.hpp"
#include "plan/plan.hpp"

namespace zp {

struct PlanOptions {
  int workers = 1;             // processes running jobs at once
  int threads_per_worker = 1;  // decode/encode threads in each
  int64_t memory_limit = 2000000000;
  int64_t num_jobs = 0;  // 0: as few as memory allows, at least one per worker
};

// Memory a worker process uses before any chunk: code, libraries, the plan.
inline constexpr uint64_t kWorkerBaseBytes = 40ull << 20;

// Output arrays of the selected variables and their dimension coordinates.
std::vector<ArrayPlan> build_arrays(const Dataset& ds, const Selection& sel, const Config& cfg);

// Splits the arrays into work units and jobs; fills plan.jobs and plan.summary. Throws
// Error(Config) when even one output chunk does not fit the memory limit.
void plan_jobs(Plan& plan, const PlanOptions& opt);

// Predicted peak bytes of a worker writing `a` with the given unit choice; `remote`: its source
// chunks are fetched in batches of kRemoteBatchBytes before decoding.
uint64_t predicted_peak(const ArrayPlan& a, int threads, bool remote = false);

Plan make_plan(const Dataset& ds, const Selection& sel, const Config& cfg, const PlanOptions& opt);

// Workers and threads each for a deploy mode on a machine with `cores` cores.
PlanOptions plan_options(const Config& cfg, int cores);

}  // namespace zp
