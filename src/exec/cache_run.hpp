// The coordinator of `zarr-parallel cache` and `plan`: config → source → selection → plan →
// recommendations → store (cache hit, resume or fresh) → metadata and coordinates → executor →
// consolidated metadata → completion marker. The completion marker is written only after every
// job is marked done and .zmetadata is in place.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "plan/plan.hpp"
#include "source/dataset.hpp"
#include "transform/selection.hpp"

namespace zp {

struct Prepared {
  Config config;
  Dataset dataset;
  Coordinates coordinates;
  Selection selection;
  Plan plan;
};

// Everything up to and including the plan and its recommendations; no writes.
Prepared prepare(const Config& cfg);

struct CacheOptions {
  bool yes = false;  // proceed despite recommendations
};

// Returns the process exit code (0 done or cache hit, 3 stopped on recommendations); throws Error.
int run_cache(const Config& cfg, const CacheOptions& opt);

// Human-readable plan: jobs, regions, source chunks, amplification, memory, recommendations.
std::string describe_plan(const Plan& plan, std::size_t max_jobs = 20);

}  // namespace zp
