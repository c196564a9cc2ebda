// Executors run the jobs of a saved plan; they never plan. Every one of them ends in the same
// run_worker_jobs(), which is also what `zarr-parallel worker PLAN JOB_ID...` calls, so a job
// behaves the same in-process, in a local worker process or on a cluster node.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "exec/progress.hpp"
#include "plan/plan.hpp"
#include "store/file_store.hpp"
#include "write/job_runner.hpp"
#include "write/store_state.hpp"

namespace zp {

struct RunContext {
  const Plan& plan;
  // Where the run keeps its own files: workers' logs and heartbeats, temporaries. The store's
  // folder; for a store on S3 a local scratch folder (object_store_workers.hpp).
  const FileStore& store;
  // The store's records: done markers (for a folder store, the same folder as `store`).
  const StoreState& state;
  int log_level = 1;
  // The plan file exec'd workers load; "" the store's own plan.json. May be the plan's URL on S3
  // (SLURM's workers), with the SHA-256 the coordinator read and the store's public options.
  std::string plan_file = {};
  std::string plan_sha256 = {};    // "": computed from plan_file
  std::string store_options = {};  // --store-options for a plan on S3
  // Called about once a second while local workers run (a store on S3: is the lease still ours,
  // the workers' heartbeats mirrored into the prefix). What it throws stops every worker at once
  // (SIGKILL: no more chunks) and ends run_local with that error.
  std::function<void()> on_tick = {};
};

// Runs the given jobs here, skipping those already marked done; marks each done when its chunks
// are all in place. `on_done` sees each job's stats.
// `on_chunk` sees a running job's stats as its chunks are written.
void run_worker_jobs(const Plan& plan, const std::vector<int64_t>& ids, int threads,
                     const std::string& worker_id,
                     const std::function<void(const JobStats&)>& on_done = {},
                     const std::function<void(const JobStats&)>& on_chunk = {},
                     const std::string& local_root = "");

// The output chunks of each of `jobs` (for Progress::set_job_chunks).
std::map<int64_t, int64_t> chunks_of_jobs(const Plan& plan, const std::vector<int64_t>& jobs);

// A worker's heartbeat, when it is about `job`, as that job's progress so far.
void report_heartbeat(Progress& progress, int64_t job, const nlohmann::json& beat);

// What a local worker process runs: job ids arrive on socket `fd`, one a line; each job is run
// (its output into its own log) and its id sent back when it is marked done. Returns when the
// coordinator closes the socket: a worker takes job after job without a new process each time.
// `local_root`: where logs and heartbeats go ("" the store's side folder; required for S3).
void serve_worker_jobs(const Plan& plan, int threads, const std::string& worker_id, int fd,
                       const std::string& local_root = "");

// Runs the jobs `next` hands out (nullopt: no more) one after another in this one worker (one
// heartbeat, one thread pool): a SLURM array task on the store's shared queue (queue_task.hpp).
// A job whose done marker appears while it runs (another copy won) stops at its next unit of
// chunks (looked for at most once a second).
void run_worker_queue(const Plan& plan, int threads, const std::string& worker_id,
                      const std::function<std::optional<int64_t>()>& next,
                      const std::string& local_root = "");

// deploy_mode: series — in this process, one job after another, all threads on each.
void run_series(const RunContext& ctx, const std::vector<int64_t>& jobs);

// deploy_mode: local — up to `workers` worker processes, each handed its next job as it finishes
// one (serve_worker_jobs), so a worker on a faster core takes more jobs. A worker that dies or
// stops sending heartbeats for `worker_timeout` seconds is replaced and its job run again (at most
// kMaxAttempts times). Throws Error(Job) naming failed jobs and their logs.
void run_local(const RunContext& ctx, const std::vector<int64_t>& jobs, int workers,
               int64_t worker_timeout);

inline constexpr int kMaxAttempts = 3;

// The `zarr-parallel` binary that local workers run; by default this process's own executable
// (right for the CLI; the Python module, whose executable is python, sets it).
void set_worker_executable(const std::string& path);

// ZP_FAULT_NO_COPIES set (tests and issue 34's measurements only): the local and MPI executors make
// no speculative copies.
bool speculative_copies_off();

std::string worker_executable_path();

// Job ids on line `task` (0-based) of a task list file (what an array task runs).
std::vector<int64_t> task_jobs(const std::string& task_list, int64_t task);

// deploy_mode: slurm — submits the pending jobs as an sbatch job array (one job a task,
// %simultaneous_worker_limit at once), then, with await_completion, follows the tasks through
// squeue, the done markers and the heartbeats, resubmits lost or failed tasks (at most
// kMaxAttempts times a job) and returns when every job is done. Returns false when it only
// submitted (await_completion: false). Tasks of an earlier submission still queued are adopted.
bool run_slurm(const RunContext& ctx, const std::vector<int64_t>& jobs, const Config& cfg);

// Peak resident memory of this process so far, bytes.
uint64_t peak_rss_bytes();

nlohmann::json job_stats_json(const JobStats& s);

}  // namespace zp
