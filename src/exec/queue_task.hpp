// What a SLURM array task runs (`zarr-parallel worker PLAN --queue`): job after job from the
// store's shared queue (job_queue.hpp) in one worker process, so a task that finishes early takes
// more work. Once no job is left to take, the task runs a copy of the oldest running job that the
// copy rule (plan/copy_rule.hpp) selects, from the finished jobs' times (their done markers) and
// the running job's progress (its task's heartbeat); the first copy to finish wins and the other
// stops at its next unit of chunks when it finds the job's done marker. The task waits while a
// copy may still come, and ends when every job is done or has a copy.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "exec/job_queue.hpp"
#include "plan/plan.hpp"
#include "write/store_state.hpp"

namespace zp {

// A running job to copy, and why.
struct CopyPick {
  int64_t job = 0;
  std::string task;  // the first copy's
  double started = 0, ran = 0, ends_in = 0, takes = 0;
};

class QueueTask {
 public:
  // `state`: the store's done markers; `files`: the run's heartbeats; `task`: this task's worker
  // id; `first`: its place in the order for its first look (the array task index), so that tasks
  // starting together do not all race for the first job.
  QueueTask(const Plan& plan, const JobQueue& queue, const StoreState& state,
            const StoreState& files, std::string task, int64_t first);

  // The task ends after `seconds` (SLURM's --time, counted from now): no job is taken once what
  // is left of it is under 1.5x the longest job this task ran.
  void set_time_limit(double seconds);

  // The next job to run (a copy or not); nullopt when nothing is left for this task.
  std::optional<int64_t> next();

 private:
  std::optional<int64_t> next_job();
  std::optional<int64_t> take(const std::set<int64_t>& done, const JobQueue::Claims& claims);
  std::optional<CopyPick> pick_copy(const std::set<int64_t>& done, const JobQueue::Claims& claims,
                                    std::size_t jobs_in_run, bool& may_come);
  void learn(const std::set<int64_t>& done);
  bool out_of_time();
  double started_of(int64_t job, const Claim& c, double now);

  const Plan& plan_;
  const JobQueue& queue_;
  const StoreState& state_;
  const StoreState& files_;
  const std::string task_;
  int64_t first_;
  bool first_look_ = true;
  std::set<int64_t> learnt_;              // done jobs whose time is in durations_
  std::vector<double> durations_;         // seconds per job_weight of finished jobs
  std::map<int64_t, double> first_seen_;  // claims with no readable start: when first seen here
  double deadline_ = 0;                   // when the task's time runs out (0: never)
  double job_started_ = 0;                // when next() last gave a job
  double longest_ = 0;                    // seconds of this task's longest job so far
};

// The worker command's --queue mode: the queue in `queue_root`'s side folder (the store, or for
// a store on S3 the run's scratch folder), then job after job. `local_root`: the folder of logs
// and heartbeats when the store is on S3 and the plan a local file ("": heartbeats in the store).
// `plan_sha256`: as run_worker_jobs's.
void run_queue_task(const Plan& plan, int threads, const std::string& worker_id, int64_t first,
                    const std::string& queue_root, const std::string& local_root,
                    const std::string& plan_sha256 = "", double time_limit = 0);

}  // namespace zp
