// `worker PLAN JOB_ID...`: runs jobs of a saved plan (what the executors start).
#include <filesystem>
#include <memory>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "exec/executor.hpp"
#include "exec/queue_task.hpp"
#include "plan/plan_json.hpp"
#include "store/store_table.hpp"
#include "write/remote_plan.hpp"

namespace zp {

namespace {

struct WorkerArgs {
  std::string plan_path, task_list, worker_id = "worker", plan_sha256, queue, store_options;
  std::vector<int64_t> job_ids;
  int64_t task = -1;
  int threads = 0, jobs_fd = -1;
  double time_limit = 0;  // --queue: the task's SLURM --time in seconds (0: none)
};

int run_worker_command(WorkerArgs a) {
  if (!a.task_list.empty()) a.job_ids = task_jobs(a.task_list, a.task);
  if (a.job_ids.empty() && a.jobs_fd < 0 && a.queue.empty())
    throw Error::config("JOB_ID", "give job ids, --task-list and --task, or --queue");
  // A plan on S3 (SLURM's workers): heartbeats go to the store, output to the task's log.
  const bool remote = is_remote_plan(a.plan_path);
  // The digest of the text loaded: a folder store's chunks go in only while it runs this plan
  // (a worker on S3 has no such fence).
  std::string digest;
  const Plan p =
      remote ? load_remote_plan(a.plan_path, a.plan_sha256, handed_store_access(a.store_options))
             : load_plan(a.plan_path, a.plan_sha256, &digest);
  const int threads = a.threads > 0 ? a.threads : p.threads_per_worker;
  // A store on S3 has no folder for logs: a local plan file's workers keep them beside it (the
  // coordinator's local scratch folder).
  const std::string local_root = backend_of(p.store) == Backend::S3 && !remote
                                     ? std::filesystem::absolute(a.plan_path).parent_path().string()
                                     : "";
  if (!a.queue.empty())
    run_queue_task(p, threads, a.worker_id, a.task, a.queue, local_root, digest, a.time_limit);
  else if (a.jobs_fd >= 0)
    serve_worker_jobs(p, threads, a.worker_id, a.jobs_fd, local_root, digest);
  else
    run_worker_jobs(p, a.job_ids, threads, a.worker_id, {}, {}, local_root, digest);
  return 0;
}

}  // namespace

CommandRun setup_worker(CLI::App& cmd) {
  auto a = std::make_shared<WorkerArgs>();
  cmd.add_option("PLAN", a->plan_path, "plan JSON (STORE/.zarr-parallel/plan.json, also s3://...)")
      ->required();
  cmd.add_option("JOB_ID", a->job_ids, "job ids");
  cmd.add_option("--task-list", a->task_list,
                 "file with the job ids of each array task, a line a task");
  cmd.add_option("--task", a->task,
                 "line of --task-list to run (0-based: $SLURM_ARRAY_TASK_ID); with --queue, the "
                 "place in the queue to look at first");
  cmd.add_option("--threads", a->threads, "decode/encode threads (default: the plan's)");
  cmd.add_option("--worker-id", a->worker_id, "name used for heartbeats");
  cmd.add_option("--plan-sha256", a->plan_sha256,
                 "refuse the plan file unless its SHA-256 is this (what the coordinator read)");
  cmd.add_option("--store-options", a->store_options,
                 "a plan on S3: the store's options as JSON (endpoint_url, region; no secrets)");
  cmd.add_option("--jobs-from-fd", a->jobs_fd,
                 "take job ids from this socket, a line each, until it closes (local mode)");
  cmd.add_option(
      "--queue", a->queue,
      "take jobs from the shared queue in this folder's .zarr-parallel/slurm/queue, then "
      "copies of slow ones (SLURM array tasks; --task: where to look first)");
  cmd.add_option("--time-limit", a->time_limit,
                 "with --queue: the task's time limit in seconds; no job is taken that would "
                 "not end within it (the coordinator starts new tasks for the rest)")
      ->check(CLI::Range(0.0, 1e9));
  return [a] { return run_worker_command(*a); };
}

}  // namespace zp
