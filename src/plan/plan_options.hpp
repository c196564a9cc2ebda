// How many workers and threads the plan is for, and the memory each may use.
#pragma once

#include <cstdint>

#include "config/config.hpp"

namespace zp {

struct PlanOptions {
  int workers = 1;             // processes running jobs at once
  int threads_per_worker = 1;  // decode/encode threads in each
  int64_t memory_limit = 2000000000;
  int64_t num_jobs = 0;  // 0: as few as memory allows, at least one per worker
};

// Workers and threads each for a deploy mode on a machine with `cores` cores.
PlanOptions plan_options(const Config& cfg, int cores);

}  // namespace zp
