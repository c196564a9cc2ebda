// The coordinator of `zarr-parallel cache` and `plan`: config → source → selection → plan →
// recommendations → store (cache hit, resume or fresh) → metadata and coordinates → executor →
// consolidated metadata → completion marker. The completion marker is written only after every
// job is marked done and .zmetadata is in place.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "exec/cache_decision.hpp"
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
  KeptChunks kept;  // the remote coordinates' stored bytes, read for the plan
};

// Everything up to and including the plan and its recommendations; no writes. `fingerprints`,
// when given, gets the source objects' fingerprints (source_objects order), taken while the
// coordinates are read and the plan made: behind a network their round trips overlap.
Prepared prepare(const Config& cfg, std::vector<Fingerprint>* fingerprints = nullptr);

struct CacheOptions {
  bool yes = false;  // proceed despite recommendations
  bool ask = true;   // ask on a terminal when there are recommendations
  std::vector<std::string> modes = {"series", "local", "slurm"};  // deploy modes the caller runs
  // deploy_mode mpi: when rank 0 fails before the jobs, the other ranks throw its error too
  // (Python: every rank's cache() raises); otherwise they return 0 (the CLI's ranks exit 0).
  bool every_rank_throws = false;
};

// A cache run up to the point where jobs can be handed to an executor.
struct CacheSession {
  enum class Status { Hit, Stopped, Ready };
  Status status = Status::Ready;
  Plan plan;
  std::string target;            // the store's path (canonical)
  std::string build_root;        // where the jobs write: the target, or its staging store
  std::string plan_path;         // the saved plan workers run
  std::string plan_sha256;       // of its text as this run wrote or read it: handed to workers
  std::vector<int64_t> pending;  // jobs without a done marker
  double started = 0;
  Decision decision;  // hit / new / continue / rebuild, and why (the run's first line)
  KeptChunks kept;    // Prepared::kept: written as the coordinate arrays without a second read
};

// Cache hit check, plan, recommendations, store replace/resume, metadata and coordinates.
CacheSession begin_cache(const Config& cfg, const CacheOptions& opt);
// After the executor: checks every job is done, consolidates metadata, writes stats, marks
// complete, swaps a staged replacement into place and releases the lock. `session.build_root`
// may be empty: it is then the store holding `session.plan_path`.
void finish_cache(const Config& cfg, const CacheSession& session);
// Releases the lock begin_cache took on `target` (after a failed run; finish_cache does it too).
void release_cache_lock(const std::string& target);

// deploy_mode mpi: every rank calls this under mpirun (see mpi_executor.cpp). Exit code as
// run_cache.
int run_cache_mpi(const Config& cfg, const CacheOptions& opt);
bool mpi_built();

// The config's executor (series, local or slurm) on the session's pending jobs, handing the workers
// the secrets of `access`; the caller holds a TerminationGuard or InterruptRelay. False when jobs
// were only submitted (slurm with await_completion: false): a resume finishes the store later.
bool run_jobs(const Config& cfg, const CacheSession& session, const AccessOptions& access);

// begin, run the config's executor, finish. Returns the exit code (0 done or cache hit, 3 stopped
// on recommendations); throws Error.
int run_cache(const Config& cfg, const CacheOptions& opt);

// The store's path, then the two lines of Python that open it (stdout).
void print_open_hint(const std::string& store);

// Human-readable plan: jobs, regions, source chunks, amplification, memory, recommendations.
std::string describe_plan(const Plan& plan, std::size_t max_jobs = 20);

}  // namespace zp
