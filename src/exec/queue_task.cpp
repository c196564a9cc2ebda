#include "exec/queue_task.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include "core/console.hpp"
#include "exec/executor.hpp"
#include "exec/heartbeat.hpp"
#include "exec/termination.hpp"
#include "plan/copy_rule.hpp"
#include "store/store_table.hpp"
#include "write/output_store.hpp"

namespace zp {

namespace {

// How often an idle task looks at the queue again: a listing of two folders and a few small
// reads, so a thousand waiting tasks cost a shared file system a few hundred operations a second.
constexpr double kWaitSeconds = 2.0;

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// Sleeps `seconds`, ending early when the task is being stopped.
void wait_a_while(double seconds) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (std::chrono::steady_clock::now() < until && termination_signal() == 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  throw_if_terminated("the cache run was");
}

}  // namespace

QueueTask::QueueTask(const Plan& plan, const JobQueue& queue, const StoreState& state,
                     const StoreState& files, std::string task, int64_t first)
    : plan_(plan),
      queue_(queue),
      state_(state),
      files_(files),
      task_(std::move(task)),
      first_(std::max<int64_t>(0, first)) {}

void QueueTask::set_time_limit(double seconds) {
  // SLURM counts from before this process started: a few seconds are kept aside.
  if (seconds > 0) deadline_ = now_seconds() + seconds - std::min(10.0, 0.05 * seconds);
}

// Whether the time left is too short for another job like the longest one so far (the first is
// always taken: a task that can run none would end without doing anything).
bool QueueTask::out_of_time() {
  const double now = now_seconds();
  if (job_started_ > 0) longest_ = std::max(longest_, now - job_started_);
  job_started_ = 0;
  if (deadline_ <= 0 || longest_ <= 0 || now + 1.5 * longest_ <= deadline_) return false;
  say(stderr, fmt::format("zarr-parallel: task {} takes no more jobs: {:.0f} s left of its time "
                          "limit, its longest job took {:.1f} s\n",
                          task_, std::max(0.0, deadline_ - now), longest_));
  return true;
}

std::optional<int64_t> QueueTask::next() {
  if (out_of_time()) return std::nullopt;
  const auto job = next_job();
  if (job) job_started_ = now_seconds();
  return job;
}

std::optional<int64_t> QueueTask::next_job() {
  for (;;) {
    throw_if_terminated("the cache run was");
    const auto done = done_jobs_listed(state_, plan_.jobs.size());
    const auto claims = queue_.claims(done);
    if (const auto job = take(done, claims)) return job;
    if (speculative_copies_off()) return std::nullopt;
    learn(done);
    bool may_come = false;
    const auto copy = pick_copy(done, claims, queue_.order().size(), may_come);
    if (copy && queue_.claim(copy->job, true, task_, now_seconds())) {
      say(stderr, fmt::format("zarr-parallel: job {}: started a copy on task {}, the first (task "
                              "{}) was slow (ran {:.2f} s, expected to end in {:.2f} s; a copy "
                              "takes {:.2f} s)\n",
                              copy->job, task_, copy->task.empty() ? "?" : copy->task, copy->ran,
                              copy->ends_in, copy->takes));
      return copy->job;
    }
    if (!copy && !may_come) return std::nullopt;
    if (!copy) wait_a_while(kWaitSeconds);
  }
}

// The first job of the order with neither a done marker nor a claim, claimed for this task.
std::optional<int64_t> QueueTask::take(const std::set<int64_t>& done,
                                       const JobQueue::Claims& claims) {
  const auto order = queue_.order();
  const std::size_t n = order.size();
  const std::size_t from = first_look_ && n > 0 ? static_cast<std::size_t>(first_) % n : 0;
  first_look_ = false;
  for (std::size_t i = 0; i < n; ++i) {
    const int64_t job = order[(from + i) % n];
    if (done.count(job) || claims.first.count(job) || state_.is_done(job)) continue;
    // Done meanwhile (a copy of a requeued job won): the claim stays, the job is not run.
    if (queue_.claim(job, false, task_, now_seconds()) && !state_.is_done(job)) return job;
  }
  return std::nullopt;
}

// Each finished job's seconds per job_weight, from its done marker (a store file: a number of
// seconds that makes sense, or nothing), read once.
void QueueTask::learn(const std::set<int64_t>& done) {
  for (const int64_t job : done) {
    if (!learnt_.insert(job).second) continue;
    const auto info = state_.done_info(job);
    if (!info || !info->is_object()) continue;
    const auto it = info->find("seconds");
    if (it == info->end() || !it->is_number()) continue;
    const double s = it->get<double>();
    if (std::isfinite(s) && s >= 0 && s < 1e9)
      durations_.push_back(s / job_weight(plan_.jobs[static_cast<std::size_t>(job)]));
  }
}

// When the claim's task started `job`: as the claim says (never later than now; another node's
// clock), or when this task first saw an unreadable claim.
double QueueTask::started_of(int64_t job, const Claim& c, double now) {
  const double seen = first_seen_.emplace(job, now).first->second;
  return c.started > 0 ? std::min(c.started, now) : seen;
}

// The oldest running job without a copy that a copy started now would finish first (copy_rule);
// `may_come`: some running job could still get a copy later.
std::optional<CopyPick> QueueTask::pick_copy(const std::set<int64_t>& done,
                                             const JobQueue::Claims& claims,
                                             std::size_t jobs_in_run, bool& may_come) {
  const bool enough =
      !durations_.empty() && durations_.size() >= finished_before_copies(jobs_in_run);
  const double now = now_seconds(), per_weight = enough ? median(durations_) : 0;
  std::optional<CopyPick> oldest;
  for (const auto& [job, c] : claims.first) {
    if (done.count(job) || claims.copies.count(job) || c.task == task_) continue;
    may_come = true;
    const Job& j = plan_.jobs[static_cast<std::size_t>(job)];
    JobProgress p{started_of(job, c, now), 0, 0, j.region.num_chunks()};
    if (!enough) continue;
    if (!c.task.empty())
      if (const auto hb = files_.heartbeat(c.task)) progress_from_heartbeat(*hb, job, p);
    const double copy = per_weight * job_weight(j);
    const double end = expected_finish(p, now, copy);
    if (!copy_pays(p.started, end, now, copy) || (oldest && p.started >= oldest->started)) continue;
    oldest = CopyPick{job, c.task, p.started, now - p.started, end - now, copy};
  }
  if (oldest && state_.is_done(oldest->job)) return std::nullopt;  // just finished
  return oldest;
}

void run_queue_task(const Plan& plan, int threads, const std::string& worker_id, int64_t first,
                    const std::string& queue_root, const std::string& local_root,
                    const std::string& plan_sha256, double time_limit) {
  const auto out = open_output_store(plan);
  const StoreState state(*out);
  // Other tasks' heartbeats, where WorkerJobs writes them.
  const bool in_store = backend_of(plan.store) == Backend::S3 && local_root.empty();
  const FileStore files(local_root.empty() ? plan.store : local_root);
  const StoreState files_state(files);
  const JobQueue queue(queue_root, plan.jobs.size());
  QueueTask task(plan, queue, state, in_store ? state : files_state, worker_id, first);
  task.set_time_limit(time_limit);
  run_worker_queue(
      plan, threads, worker_id, [&] { return task.next(); }, local_root, plan_sha256);
}

}  // namespace zp
