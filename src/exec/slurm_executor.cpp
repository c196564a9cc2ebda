#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>

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
#include "core/plural.hpp"
#include "exec/executor.hpp"
#include "exec/heartbeat.hpp"
#include "exec/progress.hpp"
#include "exec/run_program.hpp"
#include "exec/termination.hpp"
#include "plan/plan_json.hpp"

namespace zp {

namespace {

using json = nlohmann::json;

struct Submission {
  std::string id;             // SLURM array job id
  std::vector<int64_t> jobs;  // our job of each array task
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

std::string quote(const std::string& s) {
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

// One array job of `jobs`, one task each; `after`: the array it waits for ("" for none).
Submission submit(const RunContext& ctx, const Config& cfg, const std::vector<int64_t>& jobs,
                  int attempt, const std::string& after) {
  const std::string dir = ctx.store.path_of(std::string(StoreState::kFolder) + "/slurm");
  ctx.store.make_folder(std::string(StoreState::kFolder) + "/slurm");
  ctx.store.make_folder(std::string(StoreState::kFolder) + "/logs");
  const std::string tasks = fmt::format("{}/tasks-{}.txt", dir, attempt);
  std::string lines;
  for (auto j : jobs) lines += std::to_string(j) + "\n";
  ctx.store.put(std::string(StoreState::kFolder) + fmt::format("/slurm/tasks-{}.txt", attempt),
                lines);
  std::string script = "#!/bin/bash\n";
  script += "#SBATCH --job-name=zarr-parallel\n";
  script += fmt::format("#SBATCH --array=0-{}%{}\n", jobs.size() - 1,
                        std::max(1, cfg.simultaneous_worker_limit));
  script += fmt::format("#SBATCH --mem={}M\n", (cfg.memory_limit + 1048575) / 1048576);
  script += fmt::format("#SBATCH --time={}\n", slurm_time(cfg.worker_timeout));
  script += fmt::format("#SBATCH --cpus-per-task={}\n", ctx.plan.threads_per_worker);
  if (!after.empty()) script += "#SBATCH --dependency=afterany:" + after + "\n";
  script += fmt::format(
      "#SBATCH --output={}\n",
      quote(ctx.store.path_of(std::string(StoreState::kFolder) + "/logs/slurm-%A_%a.log")));
  if (!cfg.slurm.partition.empty())
    script += "#SBATCH --partition=" + quote(cfg.slurm.partition) + "\n";
  if (!cfg.slurm.account.empty()) script += "#SBATCH --account=" + quote(cfg.slurm.account) + "\n";
  if (!cfg.slurm.qos.empty()) script += "#SBATCH --qos=" + quote(cfg.slurm.qos) + "\n";
  for (const auto& e : cfg.slurm.extra) script += "#SBATCH " + e + "\n";
  script += fmt::format(
      "exec {} worker {} --task-list {} --task \"$SLURM_ARRAY_TASK_ID\" --threads {} "
      "--worker-id \"slurm-${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}\" --plan-sha256 {}\n",
      quote(worker_executable_path()), quote(ctx.state.plan_path()), quote(tasks),
      ctx.plan.threads_per_worker, plan_file_sha256(ctx.state.plan_path()));
  const std::string script_key =
      std::string(StoreState::kFolder) + fmt::format("/slurm/submit-{}.sh", attempt);
  ctx.store.put(script_key, script);
  std::string id = run_command({"sbatch", "--parsable", ctx.store.path_of(script_key)});
  id = id.substr(0, id.find_first_of(";\n"));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
    throw Error(ErrorKind::Job, "sbatch did not return a job id: " + id);
  log_line(cfg.log_level, 1,
           fmt::format("submitted SLURM job {} ({})", id,
                       counted(static_cast<int64_t>(jobs.size()), "array task")));
  return {id, jobs};
}

// `jobs` as arrays of at most MaxArraySize tasks, each starting when the one before has ended, so
// that simultaneous_worker_limit (each array's %N) holds for the whole run.
std::vector<Submission> submit_all(const RunContext& ctx, const Config& cfg,
                                   const std::vector<int64_t>& jobs, int& attempt) {
  std::vector<Submission> out;
  const std::size_t per = static_cast<std::size_t>(max_array_size());
  for (std::size_t from = 0; from < jobs.size(); from += per) {
    const std::vector<int64_t> part(
        jobs.begin() + static_cast<std::ptrdiff_t>(from),
        jobs.begin() + static_cast<std::ptrdiff_t>(std::min(jobs.size(), from + per)));
    out.push_back(submit(ctx, cfg, part, attempt++, out.empty() ? "" : out.back().id));
  }
  return out;
}

void save(const RunContext& ctx, const std::vector<Submission>& subs) {
  json j = json::array();
  for (const auto& s : subs) j.push_back({{"id", s.id}, {"jobs", s.jobs}});
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
  Submission sub{s["id"].get<std::string>(), {}};
  if (!valid_job_id(sub.id)) throw bad("'" + sub.id + "' is not a SLURM job id");
  if (!s.contains("jobs") || !s["jobs"].is_array())
    throw bad("job " + sub.id + " has no 'jobs' list");
  for (const auto& j : s["jobs"]) {
    if (!j.is_number_integer() || j.get<int64_t>() < 0 ||
        static_cast<std::size_t>(j.get<int64_t>()) >= plan_jobs)
      throw bad(fmt::format("job {} lists '{}', not a job of the plan", sub.id, j.dump()));
    sub.jobs.push_back(j.get<int64_t>());
  }
  return sub;
}

// The submissions of an earlier run; a damaged or foreign file is a store error (exit 5).
std::vector<Submission> load(const RunContext& ctx) {
  std::vector<Submission> out;
  const std::string key = std::string(StoreState::kFolder) + "/slurm/submissions.json";
  const auto text = ctx.store.get(key);
  if (!text) return out;
  const std::string path = ctx.store.path_of(key);
  const json j = json::parse(*text, nullptr, false);
  if (!j.is_array()) throw Error::store(path, "not a JSON list of SLURM submissions");
  for (const auto& s : j) out.push_back(parse_submission(s, ctx.plan.jobs.size(), path));
  return out;
}

// Array task indices of `id` that SLURM still holds as queued or running: "ID_3 RUNNING",
// "ID_[4-7%2] PENDING". Finished tasks, and pending ones that scancel dropped, are absent.
std::set<int64_t> active_tasks(const std::string& id) {
  int status = 0;
  const std::string out =
      run_command({"squeue", "-h", "-r", "-j", id, "-t", "all", "-o", "%i %T"}, &status);
  std::set<int64_t> active;
  if (status != 0) {
    if (out.find("Invalid job id") != std::string::npos) return active;  // purged: nothing active
    throw Error(ErrorKind::Job, "squeue failed: " + out);
  }
  static const std::set<std::string> kActive = {
      "PENDING",  "RUNNING",   "CONFIGURING", "COMPLETING",   "SUSPENDED",  "REQUEUED",
      "RESIZING", "SIGNALING", "STAGE_OUT",   "REQUEUE_HOLD", "REQUEUE_FED"};
  std::istringstream in(out);
  for (std::string task, state; in >> task >> state;) {
    const auto us = task.find('_');
    if (us == std::string::npos || task.substr(0, us) != id || !kActive.count(state)) continue;
    std::string idx = task.substr(us + 1);
    if (idx.front() != '[') {
      active.insert(std::stoll(idx));
      continue;
    }
    idx = idx.substr(1, idx.find_first_of("%]") - 1);  // "4-7,9"
    std::istringstream parts(idx);
    for (std::string part; std::getline(parts, part, ',');) {
      const auto dash = part.find('-');
      const int64_t a = std::stoll(part.substr(0, dash));
      const int64_t b = dash == std::string::npos ? a : std::stoll(part.substr(dash + 1));
      for (int64_t i = a; i <= b; ++i) active.insert(i);
    }
  }
  return active;
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
static void count_done(const StoreState& state, Progress& progress, int64_t job, uint64_t& written,
                       uint64_t& read) {
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

// Submissions of an earlier run that SLURM still holds are followed, not submitted again; the
// jobs their active tasks run go into `covered`.
std::vector<Submission> adopt_earlier(const RunContext& ctx, const Config& cfg,
                                      std::set<int64_t>& covered) {
  std::vector<Submission> subs;
  for (const auto& s : load(ctx)) {
    const auto active = active_tasks(s.id);
    for (int64_t t : active)
      if (t < static_cast<int64_t>(s.jobs.size()))
        covered.insert(s.jobs[static_cast<std::size_t>(t)]);
    if (!active.empty()) {
      log_line(cfg.log_level, 1, "following SLURM job " + s.id + " of an earlier run");
      subs.push_back(s);
    }
  }
  return subs;
}

void print_submitted(const RunContext& ctx, const std::vector<Submission>& subs) {
  say(stderr, fmt::format("zarr-parallel: submitted; follow it with `zarr-parallel status {}` or "
                          "`squeue -j {}`, and finish the store with the same command and --set "
                          "resume=true\n",
                          ctx.store.root(), subs.empty() ? std::string("?") : subs.back().id));
}

// Follows the submitted tasks through squeue, done markers and heartbeats until every job is done
// or given up; lost tasks are submitted again.
class SlurmFollow {
 public:
  SlurmFollow(const RunContext& ctx, const Config& cfg, const std::vector<int64_t>& jobs,
              std::vector<Submission>& subs, std::map<int64_t, int>& attempts, int& attempt)
      : ctx_(ctx),
        cfg_(cfg),
        jobs_(jobs),
        subs_(subs),
        attempts_(attempts),
        attempt_(attempt),
        progress_(static_cast<int64_t>(jobs.size()), cfg.log_level) {
    progress_.set_job_chunks(chunks_of_jobs(ctx.plan, jobs));
  }

  void run();

 private:
  using TaskKey = std::pair<std::string, int64_t>;
  void stop_on_signal();
  void poll(const Submission& s);
  void follow_active(const Submission& s, std::size_t t, int64_t job);
  void task_gone(const Submission& s, std::size_t t, int64_t job);
  void resubmit_lost();

  const RunContext& ctx_;
  const Config& cfg_;
  const std::vector<int64_t>& jobs_;
  std::vector<Submission>& subs_;
  std::map<int64_t, int>& attempts_;
  int& attempt_;
  Progress progress_;
  std::set<int64_t> counted_;  // done jobs whose bytes are in `written_`, `read_`
  uint64_t written_ = 0, read_ = 0;
  std::map<TaskKey, int> absent_;  // consecutive polls a task was missing
  std::set<TaskKey> settled_;      // tasks done or given up
  std::vector<std::string> failures_;
  std::vector<int64_t> lost_;  // this poll's
  std::size_t open_tasks_ = 0;
};

// The coordinator is being stopped: so are its tasks (the store stays resumable).
void SlurmFollow::stop_on_signal() {
  for (const auto& s : subs_) run_command({"scancel", s.id}, nullptr);
  progress_.finish();
  throw_if_terminated("the cache run was");
}

void SlurmFollow::poll(const Submission& s) {
  const auto active = active_tasks(s.id);
  for (std::size_t t = 0; t < s.jobs.size(); ++t) {
    const auto key = std::make_pair(s.id, static_cast<int64_t>(t));
    if (settled_.count(key)) continue;
    const int64_t job = s.jobs[t];
    if (ctx_.state.is_done(job)) {
      settled_.insert(key);
      if (counted_.insert(job).second) count_done(ctx_.state, progress_, job, written_, read_);
      continue;
    }
    ++open_tasks_;
    if (active.count(static_cast<int64_t>(t))) {
      absent_.erase(key);
      follow_active(s, t, job);
    } else {
      task_gone(s, t, job);
    }
  }
}

// A queued or running task: its heartbeat is its progress; one that stopped is cancelled.
void SlurmFollow::follow_active(const Submission& s, std::size_t t, int64_t job) {
  const std::string worker = fmt::format("slurm-{}_{}", s.id, t);
  const auto hb = ctx_.state.heartbeat(worker);
  if (hb) report_heartbeat(progress_, job, *hb);
  if (hb &&
      now_seconds() - beat_time(*hb, now_seconds()) > static_cast<double>(cfg_.worker_timeout)) {
    log_line(cfg_.log_level, 1,
             fmt::format("task {}_{} (job {}): no heartbeat for {} s, cancelling it", s.id, t, job,
                         cfg_.worker_timeout));
    run_command({"scancel", fmt::format("{}_{}", s.id, t)}, nullptr);
  }
}

// Not queued, not running, no done marker: failed, cancelled, timed out, or dropped by scancel
// while pending. Two polls in a row, so a task between states is not lost.
void SlurmFollow::task_gone(const Submission& s, std::size_t t, int64_t job) {
  const auto key = std::make_pair(s.id, static_cast<int64_t>(t));
  if (++absent_[key] < 2) return;
  settled_.insert(key);
  --open_tasks_;
  if (attempts_[job] < kMaxAttempts) {
    log_line(cfg_.log_level, 1,
             fmt::format("task {}_{} (job {}) ended without finishing its job; "
                         "running it again (attempt {} of {})",
                         s.id, t, job, attempts_[job] + 1, kMaxAttempts));
    lost_.push_back(job);
  } else {
    failures_.push_back(
        fmt::format("job {} failed {}; last log {}", job, counted(attempts_[job], "time"),
                    ctx_.store.path_of(std::string(StoreState::kFolder) +
                                       fmt::format("/logs/slurm-{}_{}.log", s.id, t))));
  }
}

void SlurmFollow::resubmit_lost() {
  for (auto j : lost_) ++attempts_[j];
  for (auto& sub : submit_all(ctx_, cfg_, lost_, attempt_)) subs_.push_back(std::move(sub));
  save(ctx_, subs_);
}

void SlurmFollow::run() {
  for (;;) {
    if (termination_signal() != 0) stop_on_signal();
    lost_.clear();
    open_tasks_ = 0;
    int64_t done = 0;
    for (auto j : jobs_) done += ctx_.state.is_done(j);
    for (const auto& s : subs_) poll(s);
    progress_.update(done, written_, static_cast<int>(open_tasks_), read_);
    if (!lost_.empty()) {
      resubmit_lost();
      continue;
    }
    if (open_tasks_ == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  progress_.finish();
  if (!failures_.empty()) {
    std::string msg = "the cache is incomplete; fix the cause and run again with resume: true";
    for (const auto& f : failures_) msg += "\n  " + f;
    throw Error(ErrorKind::Job, msg);
  }
}

}  // namespace

bool run_slurm(const RunContext& ctx, const std::vector<int64_t>& jobs, const Config& cfg) {
  std::set<int64_t> covered;  // pending jobs an earlier, still queued submission will run
  std::vector<Submission> subs = adopt_earlier(ctx, cfg, covered);
  std::vector<int64_t> todo;
  for (auto j : jobs)
    if (!covered.count(j)) todo.push_back(j);
  int attempt = static_cast<int>(load(ctx).size());
  std::map<int64_t, int> attempts;
  for (auto j : todo) attempts[j] = 1;
  for (auto& sub : submit_all(ctx, cfg, todo, attempt)) subs.push_back(std::move(sub));
  save(ctx, subs);
  if (!cfg.await_completion) {
    print_submitted(ctx, subs);
    return false;
  }
  SlurmFollow(ctx, cfg, jobs, subs, attempts, attempt).run();
  return true;
}

}  // namespace zp
