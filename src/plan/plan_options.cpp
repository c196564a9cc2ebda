#include "plan/plan_options.hpp"

#include <algorithm>

namespace zp {

PlanOptions plan_options(const Config& cfg, int cores) {
  PlanOptions o;
  o.memory_limit = cfg.memory_limit;
  o.num_jobs = cfg.num_jobs;
  cores = std::max(cores, 1);
  if (cfg.deploy_mode == "series") {
    o.workers = 1;
    o.threads_per_worker = cores;
  } else {
    o.workers = cfg.simultaneous_worker_limit;
    // Local workers share this machine's cores; on a cluster each worker has its own node slot,
    // but we plan for one core each unless the machine says more.
    o.threads_per_worker = cfg.deploy_mode == "local" ? std::max(1, cores / o.workers) : 1;
  }
  if (cfg.threads_per_worker > 0) o.threads_per_worker = cfg.threads_per_worker;
  return o;
}

}  // namespace zp
