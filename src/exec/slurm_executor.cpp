#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "core/console.hpp"
#include "core/error.hpp"
#include "core/json_limits.hpp"
#include "core/plural.hpp"
#include "exec/executor.hpp"
#include "exec/heartbeat.hpp"
#include "exec/job_queue.hpp"
#include "exec/progress.hpp"
#include "exec/run_program.hpp"
#include "exec/slurm_jobs.hpp"
#include "exec/termination.hpp"
#include "plan/plan_json.hpp"
#include "store/private_folder.hpp"
#include "write/store_inventory.hpp"

namespace zp {

namespace {

using json = nlohmann::json;

// One sbatch array: its tasks take jobs from the store's shared queue (job_queue.hpp).
struct Submission {
  std::string id;     // SLURM array job id
  int64_t tasks = 0;  // array tasks 0..tasks-1

  std::string task_name(int64_t t) const { return fmt::format("slurm-{}_{}", id, t); }
};

// Runs a command by exec argv (no shell), returns its output; throws Error(Job) with its output
// when it fails, unless `status_out` takes the status.
std::string run_command(const std::vector<std::string>& argv, int* status_out = nullptr) {
  ProgramResult r = run_program(argv);
  if (status_out) {
    *status_out = r.status;
  } else if (r.status != 0) {
    throw Error(ErrorKind::Job, "'" + command_text(argv) + "' failed: " + r.out);
  }
  return r.out;
}

// One word of the sbatch script. A control character is refused, not quoted: a newline would end
// the script's line (config checks the paths it comes from first: structured_keys.cpp).
std::string quote(const std::string& s) {
  if (std::any_of(s.begin(), s.end(), [](unsigned char ch) { return ch < 0x20 || ch == 0x7f; }))
    throw Error::config("cache_store", nlohmann::json(s).dump() +
                                           " has a control character: it cannot go into an "
                                           "sbatch script; choose a path without one");
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string slurm_time(int64_t seconds) {
  return fmt::format("{}-{:02d}:{:02d}:{:02d}", seconds / 86400, seconds % 86400 / 3600,
                     seconds % 3600 / 60, seconds % 60);
}

// SLURM refuses an array index at or past MaxArraySize: 1001 unless the site set another.
int64_t max_array_size() {
  static const int64_t n = [] {
    int status = 0;
    const std::string out = run_command({"scontrol", "show", "config"}, &status);
    std::istringstream in(out);
    for (std::string line; status == 0 && std::getline(in, line);) {
      if (line.rfind("MaxArraySize", 0) != 0) continue;
      const auto eq = line.find('=');
      if (eq == std::string::npos) break;
      try {
        const int64_t v = std::stoll(line.substr(eq + 1));
        if (v > 0) return v;
      } catch (const std::exception&) {
      }
      break;
    }
    return int64_t{1001};
  }();
  return n;
}

// The sbatch script of an array of `tasks` tasks taking jobs from the queue; `first`: the place
// in the queue where its task 0 looks first; `logs`: the private folder of slurmstepd's output.
std::string array_script(const RunContext& ctx, const Config& cfg, int64_t tasks, int64_t first,
                         const std::string& logs) {
  std::string script = "#!/bin/bash\n";
  script += "#SBATCH --job-name=" + slurm_identity(ctx).name + "\n";
  script += fmt::format("#SBATCH --array=0-{}%{}\n", tasks - 1,
                        std::max(1, cfg.simultaneous_worker_limit));
  script += fmt::format("#SBATCH --mem={}M\n", (cfg.memory_limit + 1048575) / 1048576);
  script += fmt::format("#SBATCH --time={}\n", slurm_time(cfg.worker_timeout));
  script += fmt::format("#SBATCH --cpus-per-task={}\n", ctx.plan.threads_per_worker);
  script += fmt::format("#SBATCH --output={}\n", quote(logs + "/slurm-%A_%a.log"));
  if (!cfg.slurm.partition.empty())
    script += "#SBATCH --partition=" + quote(cfg.slurm.partition) + "\n";
  if (!cfg.slurm.account.empty()) script += "#SBATCH --account=" + quote(cfg.slurm.account) + "\n";
  if (!cfg.slurm.qos.empty()) script += "#SBATCH --qos=" + quote(cfg.slurm.qos) + "\n";
  for (const auto& e : cfg.slurm.extra) script += "#SBATCH " + e + "\n";
  const std::string plan = ctx.plan_file.empty() ? ctx.state.plan_path() : ctx.plan_file;
  script += fmt::format(
      "exec {} worker {} --queue {} --task \"$(({} + SLURM_ARRAY_TASK_ID))\" --threads {} "
      "--worker-id \"slurm-${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}\" --time-limit {} "
      "--plan-sha256 {}{}\n",
      quote(worker_executable_path()), quote(plan), quote(ctx.store.root()), first,
      ctx.plan.threads_per_worker, cfg.worker_timeout, handed_digest(ctx),
      ctx.store_options.empty() ? "" : " --store-options " + quote(ctx.store_options));
  return script;
}

// One array of `tasks` tasks.
Submission submit(const RunContext& ctx, const Config& cfg, int64_t tasks, int64_t first,
                  int attempt) {
  // slurmstepd follows links when it opens --output, sbatch reads the script after we wrote it:
  // both folders must be ours and private (a shared store's side folder is refused).
  const std::string side = std::string(StoreState::kFolder);
  const std::string scripts =
      private_folder(ctx.store.path_of(side + "/slurm"), "the SLURM job scripts");
  const std::string logs =
      private_folder(ctx.store.path_of(side + "/logs"), "the logs SLURM writes (--output)");
  only_own_files(logs, "slurm-", "the logs SLURM writes (--output)");
  const std::string name = fmt::format("submit-{}.sh", attempt);
  ctx.store.put(side + "/slurm/" + name, array_script(ctx, cfg, tasks, first, logs));
  // The name on the command line too: it wins over a --job-name in slurm.extra.
  std::string id = run_command(
      {"sbatch", "--parsable", "--job-name=" + slurm_identity(ctx).name, scripts + "/" + name});
  id = id.substr(0, id.find_first_of(";\n"));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw Error(ErrorKind::Job, "sbatch did not return a job id: " + id);
  log_line(cfg.log_level, 1,
           fmt::format("submitted SLURM job {} ({} taking jobs from the queue in the store)", id,
                       counted(tasks, "array task")));
  return {id, tasks};
}

// `tasks` array tasks, in arrays of at most MaxArraySize tasks. They all run at once: together
// they are at most simultaneous_worker_limit.
std::vector<Submission> submit_all(const RunContext& ctx, const Config& cfg, int64_t tasks,
                                   int& attempt) {
  std::vector<Submission> out;
  const int64_t per = max_array_size();
  for (int64_t from = 0; from < tasks; from += per)
    out.push_back(submit(ctx, cfg, std::min(per, tasks - from), from, attempt++));
  return out;
}

void save(const RunContext& ctx, const std::vector<Submission>& subs) {
  json j = json::array();
  for (const auto& s : subs) j.push_back({{"id", s.id}, {"tasks", s.tasks}});
  ctx.store.put(std::string(StoreState::kFolder) + "/slurm/submissions.json", j.dump());
}

// SLURM job ids are digits, with an array task suffix "_N" at most: anything else in a store's
// submissions.json was not written by us.
bool valid_job_id(const std::string& id) {
  static const std::regex kId("[0-9]{1,20}(_[0-9]{1,20})?");
  return std::regex_match(id, kId);
}

Submission parse_submission(const json& s, std::size_t plan_jobs, const std::string& path) {
  auto bad = [&](const std::string& what) { return Error::store(path, what); };
  if (!s.is_object() || !s.contains("id") || !s["id"].is_string())
    throw bad("an entry without a string 'id'");
  Submission sub{s["id"].get<std::string>(), 0};
  if (!valid_job_id(sub.id)) throw bad("'" + sub.id + "' is not a SLURM job id");
  // Never more tasks than jobs: the count is what the coordinator asks squeue about.
  const auto tasks = s.find("tasks");
  if (tasks == s.end() || !tasks->is_number_integer() || tasks->get<int64_t>() < 1 ||
      static_cast<uint64_t>(tasks->get<int64_t>()) > std::max<std::size_t>(plan_jobs, 1))
    throw bad(fmt::format("job {}: '{}' is not a number of array tasks of this plan", sub.id,
                          tasks == s.end() ? std::string("none") : tasks->dump().substr(0, 40)));
  sub.tasks = tasks->get<int64_t>();
  return sub;
}

// At most this many submissions a run saves (its first arrays, then one a job queued again, at
// most kMaxAttempts a job, and one a round of tasks), of at most kSubmissionBytes each
// ({"id":"<41 characters>","tasks":<19 digits>},).
std::size_t max_submissions(std::size_t plan_jobs) {
  return 4 * plan_jobs + 1024;
}
constexpr uint64_t kSubmissionBytes = 96;

// The submissions of an earlier run; a damaged, foreign or too large file is a store error
// (exit 5), read no further than a run's submissions can make it.
std::vector<Submission> load(const RunContext& ctx) {
  std::vector<Submission> out;
  const std::string key = std::string(StoreState::kFolder) + "/slurm/submissions.json";
  const std::string path = ctx.store.path_of(key);
  const std::size_t most = max_submissions(ctx.plan.jobs.size());
  const auto text = ctx.store.get_at_most(key, kSubmissionBytes * most);
  if (!text) {
    if (!ctx.store.exists(key)) return out;
    throw Error::store(path, fmt::format("larger than {} bytes, more than this plan's SLURM "
                                         "submissions can make it",
                                         kSubmissionBytes * most));
  }
  const json j = json_too_deep(*text) ? json() : json::parse(*text, nullptr, false);
  if (!j.is_array()) throw Error::store(path, "not a JSON list of SLURM submissions");
  if (j.size() > most)
    throw Error::store(
        path, fmt::format("{} submissions, more than this plan can make ({})", j.size(), most));
  for (const auto& s : j) out.push_back(parse_submission(s, ctx.plan.jobs.size(), path));
  return out;
}

}  // namespace

std::vector<int64_t> task_jobs(const std::string& task_list, int64_t task) {
  std::ifstream in(task_list);
  if (!in) throw Error::config("--task-list", "cannot read '" + task_list + "'");
  std::string line;
  for (int64_t i = 0; std::getline(in, line); ++i)
    if (i == task) {
      std::vector<int64_t> ids;
      std::istringstream words(line);
      for (int64_t id; words >> id;) ids.push_back(id);
      return ids;
    }
  throw Error::config("--task", fmt::format("no line {} in '{}'", task, task_list));
}

// A job found done: its bytes (from its done marker, a store file: numbers only) join the totals.
static void count_done_job(const StoreState& state, Progress& progress, int64_t job,
                           uint64_t& written, uint64_t& read) {
  const auto info = state.done_info(job);
  const auto field = [&](const char* key) {
    const auto it = info ? info->find(key) : nlohmann::json::const_iterator();
    return info && it != info->end() && it->is_number() ? it->get<double>() : 0.0;
  };
  written += static_cast<uint64_t>(std::max(0.0, field("bytes_written")));
  read += static_cast<uint64_t>(std::max(0.0, field("bytes_read")));
  progress.job_finished(job, field("seconds"));
}

namespace {

// Submissions of an earlier run that SLURM still holds are followed, not submitted again; their
// tasks still queued or running go into `running`. A job that is not ours (another user's, or
// named for another store or plan) is left alone: not followed, counted or cancelled.
std::vector<Submission> adopt_earlier(const RunContext& ctx, const Config& cfg,
                                      const SlurmIdentity& me, std::set<std::string>& running) {
  std::vector<Submission> subs;
  for (const auto& s : load(ctx)) {
    const auto tasks = slurm_tasks(s.id, me);
    if (!tasks.foreign.empty()) {
      log_line(
          cfg.log_level, 1,
          fmt::format(
              "SLURM job {} in {} is not this run's ({}; ours: uid {}, job name "
              "'{}'): ignored, neither followed nor cancelled",
              s.id, ctx.store.path_of(std::string(StoreState::kFolder) + "/slurm/submissions.json"),
              tasks.foreign, me.uid, me.name));
      continue;
    }
    const auto& active = tasks.active;
    for (int64_t t : active)
      if (t < s.tasks) running.insert(s.task_name(t));
    if (!active.empty()) {
      log_line(cfg.log_level, 1, "following SLURM job " + s.id + " of an earlier run");
      subs.push_back(s);
    }
  }
  return subs;
}

// Claims of `jobs` (not done) whose task is not `running`: an earlier run's tasks that are gone,
// or an earlier store's (an append numbers its jobs from 0 again). Their jobs are queued again.
void release_stale(const JobQueue& queue, const std::vector<int64_t>& jobs,
                   const std::set<std::string>& running) {
  const std::set<int64_t> pending(jobs.begin(), jobs.end());
  const auto claims = queue.claims();
  for (const auto* kind : {&claims.first, &claims.copies})
    for (const auto& [job, c] : *kind)
      if (pending.count(job) && !running.count(c.task)) queue.release(job, kind == &claims.copies);
}

// Largest jobs first: the last ones taken are then the smallest, and the tasks finish close
// together (as the local executor hands them out).
std::vector<int64_t> largest_first(const Plan& plan, std::vector<int64_t> jobs) {
  auto size_of = [&](int64_t id) {
    const Job& j = plan.jobs[static_cast<std::size_t>(id)];
    return j.output_bytes + j.read_bytes;
  };
  std::stable_sort(jobs.begin(), jobs.end(),
                   [&](int64_t a, int64_t b) { return size_of(a) > size_of(b); });
  return jobs;
}

void print_submitted(const RunContext& ctx, const std::vector<Submission>& subs) {
  say(stderr, fmt::format("zarr-parallel: submitted; follow it with `zarr-parallel status {}` or "
                          "`squeue -j {}`, and finish the store with the same command and --set "
                          "resume=true\n",
                          ctx.plan_file.empty() ? ctx.store.root() : ctx.plan.store,
                          subs.empty() ? std::string("?") : subs.back().id));
}

// Follows the array tasks through squeue, the queue's claims, done markers and heartbeats until
// every job is done or given up: the job of a task that is gone is queued again (at most
// kMaxAttempts runs a job), and tasks are submitted again while jobs are left and too few tasks.
class SlurmFollow {
 public:
  SlurmFollow(const RunContext& ctx, const Config& cfg, const std::vector<int64_t>& jobs,
              std::vector<Submission>& subs, int& attempt, const JobQueue& queue)
      : ctx_(ctx),
        cfg_(cfg),
        me_(slurm_identity(ctx)),
        jobs_(jobs.begin(), jobs.end()),
        subs_(subs),
        attempt_(attempt),
        queue_(queue),
        progress_(static_cast<int64_t>(jobs.size()), cfg.log_level) {
    progress_.set_job_chunks(chunks_of_jobs(ctx.plan, jobs));
    for (const auto& s : subs_)
      for (int64_t t = 0; t < s.tasks; ++t) absent_[s.task_name(t)] = 0;
  }

  void run();

 private:
  void stop_on_signal();
  void poll_tasks();
  void follow_active(const Submission& s, int64_t t);
  bool gone(const std::string& task) const;
  std::set<int64_t> count_done(const JobQueue::Claims& claims);
  void requeue_lost(const std::set<int64_t>& done, const JobQueue::Claims& claims);
  void give_up(int64_t job, const std::string& task, const std::string& why);
  bool more_tasks(const std::set<int64_t>& done, const JobQueue::Claims& claims);
  void submit_more(int64_t tasks);
  void end_tasks();

  const RunContext& ctx_;
  const Config& cfg_;
  const SlurmIdentity me_;
  const std::set<int64_t> jobs_;
  std::vector<Submission>& subs_;
  int& attempt_;
  const JobQueue& queue_;
  Progress progress_;
  std::set<int64_t> counted_;  // done jobs whose bytes are in `written_`, `read_`
  uint64_t written_ = 0, read_ = 0;
  std::map<std::string, int> absent_;  // each task of ours: consecutive polls not in squeue
  // Each running task's last heartbeat (a hash of its text) and when, by this clock, it changed:
  // the nodes' clocks may run ahead or behind, and a beat's own time is the store's word.
  std::map<std::string, std::pair<std::size_t, double>> beats_;
  int64_t active_ = 0;               // tasks in squeue at the last poll
  std::map<int64_t, int> attempts_;  // runs of a job lost so far
  std::set<int64_t> failed_;
  std::vector<std::string> failures_;
  int64_t lost_ = 0;  // jobs queued again at this poll
  int idle_rounds_ = 0;
  std::size_t done_at_round_ = SIZE_MAX;
  std::size_t refilled_at_ = 0;  // jobs done when a freed slot last got a new task
  bool strays_ = false;          // a copy ran or a task was lost: either may have left temporaries
};

// The coordinator is being stopped: so are its tasks (the store stays resumable).
void SlurmFollow::stop_on_signal() {
  for (const auto& s : subs_) scancel_ours(s.id, me_);
  progress_.finish();
  throw_if_terminated("the cache run was");
}

void SlurmFollow::poll_tasks() {
  active_ = 0;
  for (const auto& s : subs_) {
    const auto active = slurm_tasks(s.id, me_).active;
    for (int64_t t = 0; t < s.tasks; ++t) {
      if (!active.count(t)) {
        ++absent_[s.task_name(t)];
        continue;
      }
      absent_[s.task_name(t)] = 0;
      ++active_;
      follow_active(s, t);
    }
  }
}

// A queued or running task: its heartbeat is its job's progress; one whose heartbeat has not
// changed for worker_timeout (this clock: a beat dated ahead by its node's clock is alive while it
// changes, a forged one is not) is cancelled.
void SlurmFollow::follow_active(const Submission& s, int64_t t) {
  const auto hb = ctx_.state.heartbeat(s.task_name(t));  // in the store (on S3 too)
  if (!hb || !hb->is_object()) return;
  const auto job = hb->find("job");
  if (job != hb->end() && job->is_number_integer() && jobs_.count(job->get<int64_t>()))
    report_heartbeat(progress_, job->get<int64_t>(), *hb);
  const double now = now_seconds();
  const std::size_t text = std::hash<std::string>()(hb->dump());
  const auto [seen, first] = beats_.try_emplace(s.task_name(t), text, now);
  if (!first && seen->second.first != text) seen->second = {text, now};
  if (now - seen->second.second <= static_cast<double>(cfg_.worker_timeout)) return;
  log_line(cfg_.log_level, 1,
           fmt::format("task {}_{}: no heartbeat for {} s, cancelling it", s.id, t,
                       cfg_.worker_timeout));
  scancel_ours(fmt::format("{}_{}", s.id, t), me_);
}

// Not queued or running two polls in a row (a task between states is not lost), or not a task of
// this run's arrays at all.
bool SlurmFollow::gone(const std::string& task) const {
  const auto it = absent_.find(task);
  return it == absent_.end() || it->second >= 2;
}

// This run's jobs with a done marker; the newly done ones' bytes join the totals.
std::set<int64_t> SlurmFollow::count_done(const JobQueue::Claims& claims) {
  std::set<int64_t> done;
  for (const int64_t j : done_jobs_listed(ctx_.state, ctx_.plan.jobs.size())) {
    if (!jobs_.count(j)) continue;
    done.insert(j);
    if (!counted_.insert(j).second) continue;
    count_done_job(ctx_.state, progress_, j, written_, read_);
    const auto copy = claims.copies.find(j);
    const auto info = ctx_.state.done_info(j);  // a store file: the worker only if a string
    const auto worker = info && info->is_object() ? info->find("worker") : json::const_iterator();
    if (copy != claims.copies.end() && info && info->is_object() && worker != info->end() &&
        worker->is_string() && worker->get<std::string>() == copy->second.task)
      log_line(cfg_.log_level, 1,
               fmt::format("job {}: the copy on task {} finished first", j, copy->second.task));
  }
  strays_ |= !claims.copies.empty();
  return done;
}

// Claims of unfinished jobs whose task is gone are released: the job is taken again (by a task
// waiting for work, or one submitted for it), at most kMaxAttempts runs a job.
void SlurmFollow::requeue_lost(const std::set<int64_t>& done, const JobQueue::Claims& claims) {
  lost_ = 0;
  auto open = [&](int64_t job) {
    return jobs_.count(job) && !done.count(job) && !failed_.count(job);
  };
  for (const auto& [job, c] : claims.copies) {
    if (!open(job) || !gone(c.task)) continue;
    queue_.release(job, true);  // the first copy goes on
    strays_ = true;
  }
  for (const auto& [job, c] : claims.first) {
    if (!open(job) || !gone(c.task)) continue;
    strays_ = true;  // killed midway: its half-written temporaries stay until the end
    if (++attempts_[job] >= kMaxAttempts) {
      give_up(job, c.task, counted(kMaxAttempts, "time"));
      continue;
    }
    log_line(cfg_.log_level, 1,
             fmt::format("task {} (job {}) ended without finishing its job; running it again "
                         "(attempt {} of {})",
                         c.task.empty() ? "?" : c.task, job, attempts_[job] + 1, kMaxAttempts));
    queue_.release(job, false);
    ++lost_;
  }
}

// `job` is not run again: its claims stay (a copy claim keeps idle tasks from copying it).
void SlurmFollow::give_up(int64_t job, const std::string& task, const std::string& why) {
  failed_.insert(job);
  queue_.claim(job, true, "given-up", now_seconds());
  const std::string log =
      task.empty()
          ? std::string("(its claim names no task)")
          : ctx_.store.path_of(std::string(StoreState::kFolder) + "/logs/" + task + ".log");
  failures_.push_back(fmt::format("job {} failed {}; last log {}", job, why, log));
}

void SlurmFollow::submit_more(int64_t tasks) {
  for (auto& sub : submit_all(ctx_, cfg_, tasks, attempt_)) {
    for (int64_t t = 0; t < sub.tasks; ++t) absent_[sub.task_name(t)] = 0;
    subs_.push_back(std::move(sub));
  }
  save(ctx_, subs_);
}

// Tasks for the jobs left: when every task is gone, or for jobs queued again while too few tasks
// run. False when nothing is left to run. Rounds of tasks that end without a job done meanwhile
// (tasks that cannot start) are given up after kMaxAttempts.
bool SlurmFollow::more_tasks(const std::set<int64_t>& done, const JobQueue::Claims& claims) {
  int64_t left = 0, remaining = 0, unclaimed = lost_;  // lost_: released at this poll
  for (const auto& [task, polls] : absent_) left += polls < 2;
  for (const int64_t j : jobs_) {
    remaining += !done.count(j) && !failed_.count(j);
    unclaimed += !done.count(j) && !failed_.count(j) && !claims.first.count(j);
  }
  const int64_t free = std::max(1, cfg_.simultaneous_worker_limit) - left;
  if (left > 0) {
    // A slot freed (a task lost, or ended when its time would not fit another job) while jobs
    // wait unclaimed: a new task takes it, if jobs got done since the last such task (tasks that
    // end without running any are not replaced one by one forever).
    if (free > 0 && (lost_ > 0 || (unclaimed > 0 && done.size() > refilled_at_))) {
      submit_more(std::min(unclaimed, free));
      refilled_at_ = done.size();
    }
    return true;
  }
  if (remaining == 0) return false;
  idle_rounds_ = done.size() == done_at_round_ ? idle_rounds_ + 1 : 0;
  done_at_round_ = done.size();
  if (idle_rounds_ >= kMaxAttempts - 1) {
    for (const int64_t j : jobs_)
      if (!done.count(j) && !failed_.count(j))
        give_up(j, "", "to start: the array tasks ended without running it (see their logs)");
    return false;
  }
  submit_more(std::min(remaining, free));
  return true;
}

// Every job is done: tasks still there are losing copies or waiting for a copy to take. They are
// cancelled; once they are gone what a stopped copy or a lost task left half written can go.
void SlurmFollow::end_tasks() {
  bool any = false;
  for (const auto& s : subs_)
    if (!slurm_tasks(s.id, me_).active.empty()) {
      scancel_ours(s.id, me_);
      any = true;
    }
  for (int i = 0; any && i < 60; ++i) {
    any = false;
    for (const auto& s : subs_) any |= !slurm_tasks(s.id, me_).active.empty();
    if (any) std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  // (A store on S3 has no half-written files: a part upload not completed is no object.)
  if (!any && strays_ && ctx_.plan_file.empty())
    remove_stale_temporaries(ctx_.store.root(), ctx_.plan);
}

void SlurmFollow::run() {
  bool all_done = jobs_.empty();
  while (!all_done) {
    if (termination_signal() != 0) stop_on_signal();
    poll_tasks();
    const auto claims = queue_.claims(counted_);  // jobs counted done earlier: not read again
    const auto done = count_done(claims);
    progress_.update(static_cast<int64_t>(done.size()), written_, static_cast<int>(active_), read_);
    all_done = done.size() == jobs_.size();
    if (all_done) break;
    requeue_lost(done, claims);
    if (!more_tasks(done, claims)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  if (all_done) end_tasks();
  progress_.finish();
  if (!failures_.empty()) {
    std::string msg = "the cache is incomplete; fix the cause and run again with resume: true";
    for (const auto& f : failures_) msg += "\n  " + f;
    throw Error(ErrorKind::Job, msg);
  }
}

}  // namespace

bool run_slurm(const RunContext& ctx, const std::vector<int64_t>& jobs, const Config& cfg) {
  std::set<std::string> running;  // tasks of an earlier, still queued submission
  std::vector<Submission> subs = adopt_earlier(ctx, cfg, slurm_identity(ctx), running);
  const JobQueue queue(ctx.store.root(), ctx.plan.jobs.size());
  release_stale(queue, jobs, running);
  queue.write_order(largest_first(ctx.plan, jobs));
  int attempt = static_cast<int>(load(ctx).size());
  const int64_t slots = std::max(1, cfg.simultaneous_worker_limit);
  const int64_t want =
      std::min(static_cast<int64_t>(jobs.size()), slots - static_cast<int64_t>(running.size()));
  if (want > 0)
    for (auto& sub : submit_all(ctx, cfg, want, attempt)) subs.push_back(std::move(sub));
  save(ctx, subs);
  if (!cfg.await_completion) {
    print_submitted(ctx, subs);
    return false;
  }
  SlurmFollow(ctx, cfg, jobs, subs, attempt, queue).run();
  return true;
}

}  // namespace zp
