// `plan --simulate`: a list-scheduling model of how long a plan takes on N workers when some nodes
// are slow and some job attempts fail, as a multiple of the ideal time. Pure functions of the plan,
// seeded, so the same plan always gives the same figures (README: "Simulating a run").
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "plan/plan.hpp"

namespace zp {

// WORKERS[,slow=P%xF][,fail=Q%]: P% of the workers F times slower, Q% of job attempts failing.
struct SimulateSpec {
  int workers = 0;
  double slow_fraction = 0;  // of the workers
  double slow_factor = 1;
  double fail_fraction = 0;  // of the job attempts
};

// Throws Error(Config) naming `--simulate` and what is wrong.
SimulateSpec parse_simulate_spec(const std::string& text);

struct SimulationModel {
  double bytes_per_second = 100e6;  // a job reads its read_bytes at this rate
  double startup_seconds = 0.05;    // added to each attempt (process, plan, store, sources)
  // Copies follow plan/copy_rule (the executors' rule), with each attempt's rate known exactly.
  int seeds = 5;
};

struct SimulationResult {
  SimulateSpec spec;
  int slow_workers = 0;
  int seeds = 0;
  int64_t jobs = 0;
  double ideal_seconds = 0;  // all read bytes spread evenly, no start-up, slowness or failure
  // Medians over the seeds, with speculative copies and without them.
  double makespan_seconds = 0, makespan_without_copies = 0;
  double ratio = 1, ratio_without_copies = 1;
};

SimulationResult simulate_plan(const Plan& plan, const SimulateSpec& spec,
                               const SimulationModel& model = {});

// One run of the model: jobs of `job_seconds` (start-up included) handed out in this order
// (simulate_plan: largest first, as the local executor does) to the first idle worker, each taking
// its time times the worker's factor. An attempt fails when uniform() < fail_fraction, at
// uniform() of its time, and the job goes back to the front of the queue. `uniform` returns
// numbers in [0, 1). Returns the makespan in seconds.
double simulate_makespan(const std::vector<double>& job_seconds,
                         const std::vector<double>& worker_factors, double fail_fraction,
                         bool copies, const SimulationModel& model,
                         const std::function<double()>& uniform);

// Text lines for `plan --simulate`.
std::string describe_simulation(const SimulationResult& r, int plan_workers);

}  // namespace zp
