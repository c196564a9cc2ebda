// `worker PLAN JOB_ID...`: runs jobs of a saved plan (what the executors start).
#include <filesystem>
#include <memory>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "exec/executor.hpp"
#include "plan/plan_json.hpp"
#include "store/store_table.hpp"

namespace zp {

namespace {

struct WorkerArgs {
  std::string plan_path, task_list, worker_id = "worker", plan_sha256;
  std::vector<int64_t> job_ids;
  int64_t task = -1;
  int threads = 0, jobs_fd = -1;
};

int run_worker_command(WorkerArgs a) {
  if (!a.task_list.empty()) a.job_ids = task_jobs(a.task_list, a.task);
  if (a.job_ids.empty() && a.jobs_fd < 0)
    throw Error::config("JOB_ID", "give job ids, or --task-list and --task");
  std::string digest;  // of the text loaded: each chunk is put only while the store runs this plan
  const Plan p = load_plan(a.plan_path, a.plan_sha256, &digest);
  const int threads = a.threads > 0 ? a.threads : p.threads_per_worker;
  // A store on S3 has no folder for logs and heartbeats: they go beside the plan file (the
  // coordinator's local scratch folder).
  const std::string local_root = backend_of(p.store) == Backend::S3
                                     ? std::filesystem::absolute(a.plan_path).parent_path().string()
                                     : "";
  if (a.jobs_fd >= 0)
    serve_worker_jobs(p, threads, a.worker_id, a.jobs_fd, local_root, digest);
  else
    run_worker_jobs(p, a.job_ids, threads, a.worker_id, {}, {}, local_root, digest);
  return 0;
}

}  // namespace

CommandRun setup_worker(CLI::App& cmd) {
  auto a = std::make_shared<WorkerArgs>();
  cmd.add_option("PLAN", a->plan_path, "plan JSON (STORE/.zarr-parallel/plan.json)")->required();
  cmd.add_option("JOB_ID", a->job_ids, "job ids");
  cmd.add_option("--task-list", a->task_list,
                 "file with the job ids of each array task, a line a task");
  cmd.add_option("--task", a->task, "line of --task-list to run (0-based: $SLURM_ARRAY_TASK_ID)");
  cmd.add_option("--threads", a->threads, "decode/encode threads (default: the plan's)");
  cmd.add_option("--worker-id", a->worker_id, "name used for heartbeats");
  cmd.add_option("--plan-sha256", a->plan_sha256,
                 "refuse the plan file unless its SHA-256 is this (what the coordinator read)");
  cmd.add_option("--jobs-from-fd", a->jobs_fd,
                 "take job ids from this socket, a line each, until it closes (local mode)");
  return [a] { return run_worker_command(*a); };
}

}  // namespace zp
