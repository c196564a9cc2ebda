#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>

#include "core/crash_note.hpp"
#include "core/error.hpp"
#include "exec/executor.hpp"
#include "exec/forked_worker.hpp"
#include "exec/heartbeat.hpp"
#include "exec/progress.hpp"
#include "exec/termination.hpp"
#include "plan/copy_rule.hpp"
#include "plan/plan_json.hpp"
#include "write/store_inventory.hpp"

namespace zp {

namespace {

// A worker process and the socket its jobs go through.
struct Worker {
  std::string id;
  int socket = -1;             // job ids to it, finished job ids back; -1 once it closed its end
  std::optional<int64_t> job;  // the job it is running
  bool copy = false;           // that job is a speculative copy (another worker runs it too)
  double started = 0;          // when that job was handed to it
  JobProgress progress;        // of that job, from its heartbeat
  // A pidfd, readable when the worker exits: the coordinator wakes at once instead of at its
  // next 20 ms poll. Null where the kernel has no pidfd_open (before Linux 5.3).
  std::shared_ptr<int> exited;
  std::string inbox;
  bool released = false;  // told there are no more jobs (its socket shut for writing)
  bool forked = false;    // a fork of the coordinator, not exec'd (forked_worker.hpp)
};

std::shared_ptr<int> open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  const int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd >= 0)
    return std::shared_ptr<int>(new int(fd), [](int* p) {
      ::close(*p);
      delete p;
    });
#endif
  (void)pid;
  return nullptr;
}

// Sleeps up to `ms`, less when a worker sends a reply or exits.
void wait_for_workers(const std::map<pid_t, Worker>& workers, int ms) {
  std::vector<pollfd> fds;
  std::vector<bool> is_socket;
  bool blind = false;  // a worker that closed its socket and has no pidfd
  auto watch = [&](int fd, bool socket) {
    fds.push_back({fd, POLLIN, 0});
    is_socket.push_back(socket);
  };
  for (const auto& [pid, w] : workers) {
    if (w.socket >= 0) watch(w.socket, true);
    if (w.exited)
      watch(*w.exited, false);
    else if (w.socket < 0)
      blind = true;
  }
  if (blind) ms = std::min(ms, 1);
  if (fds.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return;
  }
  // EINTR (a signal) just ends the wait early. A pidfd stays readable until its worker is reaped:
  // the short sleep keeps a worker that is slow to be reapable from making this loop spin.
  if (::poll(fds.data(), fds.size(), ms) > 0) {
    bool socket_ready = false;
    for (std::size_t i = 0; i < fds.size(); ++i) socket_ready |= is_socket[i] && fds[i].revents;
    if (!socket_ready) std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
}

std::string& worker_executable() {
  static std::string path;
  return path;
}

}  // namespace

std::string worker_executable_path() {
  if (!worker_executable().empty()) return worker_executable();
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error::internal("cannot find the zarr-parallel executable: " + ec.message());
  return p.string();
}

std::string handed_digest(const RunContext& ctx) {
  if (ctx.plan_sha256.empty())
    throw Error::internal("no digest of the plan this run read to hand its workers");
  return ctx.plan_sha256;
}

namespace {

// The child's side of spawn_worker: dies with its coordinator, default signal actions, output
// to the job's log; then the worker command (exec'd), or the same code here (`forked`).
[[noreturn]] void become_worker(const RunContext& ctx, std::vector<std::string> args, pid_t parent,
                                int log_fd, int socket, const Worker& w) {
  // A worker dies with its coordinator, however the coordinator dies, so no orphan keeps
  // writing into a store that a later run may have taken over.
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (getppid() != parent) _exit(127);
  // The coordinator's handlers do not apply here: a signal ends a worker.
  for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGPIPE}) signal(sig, SIG_DFL);
  dup2(log_fd, STDOUT_FILENO);
  dup2(log_fd, STDERR_FILENO);
  if (log_fd > STDERR_FILENO) ::close(log_fd);  // exec would have closed it (O_CLOEXEC)
  if (w.forked)
    run_forked_worker(ctx.plan, ctx.plan.threads_per_worker, w.id, socket, ctx.store.root(),
                      ctx.plan_sha256);
  // The worker's end as fd 3, open across exec; every other socket of the coordinator closes.
  constexpr int kJobsFd = 3;
  if (socket == kJobsFd)
    ::fcntl(kJobsFd, F_SETFD, 0);
  else if (::dup2(socket, kJobsFd) < 0)
    _exit(127);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  execv(args[0].c_str(), argv.data());
  _exit(127);
}

// Starts worker `w` (exec'd, or forked without exec when w.forked) that serves jobs from a socket
// and hands it `job`; its output goes to that job's log until it moves on to the next. `others`:
// the coordinator's descriptors a forked worker must not keep (other workers' sockets: a worker
// sees the end of its jobs when its socket's last copy closes).
pid_t spawn_worker(const std::string& exe, const RunContext& ctx, int64_t job, Worker& w,
                   const std::vector<int>& others) {
  const int log_fd = StoreState(ctx.store).open_log(job);  // O_CLOEXEC: the worker keeps its dup
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    const int err = errno;
    ::close(log_fd);
    throw Error::internal(std::string("socketpair failed: ") + errno_text(err));
  }
  const std::string plan_file = ctx.plan_file.empty() ? ctx.state.plan_path() : ctx.plan_file;
  std::vector<std::string> args = {exe,
                                   "worker",
                                   plan_file,
                                   "--jobs-from-fd",
                                   "3",
                                   "--threads",
                                   std::to_string(ctx.plan.threads_per_worker),
                                   "--worker-id",
                                   w.id};
  // An exec'd worker loads the plan file: only as this coordinator read it (a fork has it here).
  if (!w.forked) args.insert(args.end(), {"--plan-sha256", handed_digest(ctx)});
  const pid_t parent = getpid();
  std::fflush(nullptr);  // a forked worker would write what is buffered here again
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    ::close(log_fd);
    ::close(sv[0]);
    ::close(sv[1]);
    throw Error::internal(std::string("fork failed: ") + errno_text(err));
  }
  if (pid == 0) {
    ::close(sv[0]);
    for (const int fd : others) ::close(fd);
    become_worker(ctx, args, parent, log_fd, sv[1], w);
  }
  ::close(log_fd);
  ::close(sv[1]);
  w.socket = sv[0];
  return pid;
}

// Sends a job id; false when the worker is gone (its exit is handled when it is reaped).
bool send_job(Worker& w, int64_t job) {
  const std::string line = std::to_string(job) + "\n";
  return ::send(w.socket, line.data(), line.size(), MSG_NOSIGNAL) ==
         static_cast<ssize_t>(line.size());
}

// Reads what the worker sent without waiting: finished job ids, a line each. Closes the socket at
// end of file (the worker exited).
std::vector<int64_t> read_replies(Worker& w) {
  std::vector<int64_t> done;
  while (w.socket >= 0) {
    char buf[256];
    const ssize_t n = ::recv(w.socket, buf, sizeof buf, MSG_DONTWAIT);
    if (n > 0) {
      w.inbox.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    ::close(w.socket);
    w.socket = -1;
  }
  for (std::size_t eol; (eol = w.inbox.find('\n')) != std::string::npos;) {
    int64_t id = -1;
    std::from_chars(w.inbox.data(), w.inbox.data() + eol, id);
    done.push_back(id);
    w.inbox.erase(0, eol + 1);
  }
  return done;
}

std::string log_tail(const std::string& path) {
  std::ifstream in(path);
  std::deque<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
    if (lines.size() > 5) lines.pop_front();
  }
  std::string out;
  for (const auto& l : lines) out += "\n      " + l;
  return out;
}

// When the store's file system is full or read-only a worker may not manage to write its own log:
// say so from here.
std::string store_disk_state(const std::string& root) {
  struct statvfs st {};
  if (statvfs(root.c_str(), &st) != 0) return "";
  if (st.f_flag & ST_RDONLY)
    return "\n      the store's file system is read-only (Read-only file system)";
  if (static_cast<uint64_t>(st.f_bavail) * st.f_bsize < (64u << 10))
    return "\n      the store's file system is full (No space left on device)";
  return "";
}

// Exit codes of errors that a retry cannot fix (bad config, bad source, unwritable store).
bool permanent_failure(int status) {
  if (!WIFEXITED(status)) return false;
  const int code = WEXITSTATUS(status);
  return code == 2 || code == 4 || code == 5;
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  return fmt::format("exit code {}", WEXITSTATUS(status));
}

}  // namespace

bool speculative_copies_off() {
  static const bool off = std::getenv("ZP_FAULT_NO_COPIES") != nullptr;
  return off;
}

void set_worker_executable(const std::string& path) {
  worker_executable() = path;
}

namespace {

// job_weight of plan job `id` (1 for an id not in the plan).
double weight_of(const Plan& plan, int64_t id) {
  return id >= 0 && static_cast<std::size_t>(id) < plan.jobs.size()
             ? job_weight(plan.jobs[static_cast<std::size_t>(id)])
             : 1.0;
}

// Largest jobs first: the last ones handed out are then the smallest, and the workers finish
// close together.
std::deque<int64_t> largest_first(const Plan& plan, const std::vector<int64_t>& jobs) {
  std::vector<int64_t> order(jobs.begin(), jobs.end());
  auto size_of = [&](int64_t id) -> uint64_t {
    if (id < 0 || static_cast<std::size_t>(id) >= plan.jobs.size()) return 0;
    const Job& j = plan.jobs[static_cast<std::size_t>(id)];
    return j.output_bytes + j.read_bytes;
  };
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return size_of(a) > size_of(b); });
  return std::deque<int64_t>(order.begin(), order.end());
}

void close_socket(Worker& w) {
  if (w.socket >= 0) ::close(w.socket);
  w.socket = -1;
}

// One run_local: the queue of jobs, the worker processes running them, what is done so far.
class LocalRun {
 public:
  LocalRun(const RunContext& ctx, const std::vector<int64_t>& jobs, int workers,
           int64_t worker_timeout)
      : ctx_(ctx),
        exe_(worker_executable_path()),
        fork_(may_fork_workers(ctx.plan, jobs, workers, !worker_executable().empty())),
        workers_(workers),
        worker_timeout_(worker_timeout),
        files_(ctx.store),
        jobs_in_run_(jobs.size()),
        queue_(largest_first(ctx.plan, jobs)),
        progress_(static_cast<int64_t>(jobs.size()), ctx.log_level) {
    progress_.set_job_chunks(chunks_of_jobs(ctx.plan, jobs));
  }

  void run();

 private:
  int busy() const;
  void kill_all();
  void hand_out(Worker& w, int64_t job);
  void finished(pid_t pid, Worker& w, int64_t job);
  void stop_on_signal();
  void hand_out_to_idle();
  void spawn_workers();
  bool reap();
  void job_ended(int64_t job, int status);
  void check_heartbeats(double now);
  void tick();
  std::optional<int64_t> job_to_copy(double now) const;
  int64_t chunks_of(int64_t job) const;
  double copy_seconds(int64_t job) const;
  bool copy_may_come() const;
  void start_copy(Worker& w, int64_t job);
  void stop_other_copies(pid_t winner, int64_t job);

  const RunContext& ctx_;
  const std::string exe_;
  const bool fork_;  // workers forked from this process, without exec (a small run)
  const int workers_;
  const int64_t worker_timeout_;
  const StoreState files_;  // the workers' logs and heartbeats (RunContext::store)
  const std::size_t jobs_in_run_;
  std::deque<int64_t> queue_;
  std::map<pid_t, Worker> running_;
  std::map<int64_t, int> attempts_;
  std::set<int64_t> done_jobs_;    // finished by one of its copies
  std::set<int64_t> copied_;       // jobs that got a speculative copy (one each)
  std::vector<double> durations_;  // seconds per job_weight of the jobs finished (copy rule)
  // A losing copy was killed, or a worker was lost: its temporaries (a shard half streamed) are
  // left.
  bool stopped_copies_ = false;
  std::vector<std::string> failures_;
  Progress progress_;
  int64_t done_ = 0;
  uint64_t written_ = 0, read_ = 0;
  int serial_ = 0;
  double last_check_ = 0;
};

int LocalRun::busy() const {
  int n = 0;
  for (const auto& [pid, w] : running_) n += w.job.has_value();
  return n;
}

void LocalRun::kill_all() {
  for (auto& [pid, w] : running_) kill(pid, SIGKILL);
  for (auto& [pid, w] : running_) {
    waitpid(pid, nullptr, 0);
    close_socket(w);
  }
  running_.clear();
  // Workers killed mid-write leave temporary files; no one else writes here (we hold the lock).
  remove_stale_temporaries(ctx_.store.root(), ctx_.plan);
}

void LocalRun::hand_out(Worker& w, int64_t job) {
  ++attempts_[job];
  w.job = job;
  w.started = now_seconds();
  w.progress = {w.started, 0, 0, chunks_of(*w.job)};
  send_job(w, job);  // a worker that is gone is reaped below, its job counted lost
}

// A worker reported `job` finished: count it when its done marker is there.
void LocalRun::finished(pid_t pid, Worker& w, int64_t job) {
  if (!w.job || *w.job != job || !ctx_.state.is_done(job)) {
    log_line(
        ctx_.log_level, 1,
        fmt::format("worker {} reported job {} without its done marker; stopping it", w.id, job));
    kill(pid, SIGKILL);
    return;
  }
  const bool was_copy = w.copy;
  w.job.reset();
  w.copy = false;
  if (!done_jobs_.insert(job).second) return;  // the other copy finished it first
  stop_other_copies(pid, job);
  if (was_copy) log_line(ctx_.log_level, 1, fmt::format("job {}: the copy finished first", job));
  durations_.push_back((now_seconds() - w.started) / weight_of(ctx_.plan, job));
  ++done_;
  if (const auto info = ctx_.state.done_info(job)) {
    written_ += info->value("bytes_written", uint64_t{0});
    read_ += info->value("bytes_read", uint64_t{0});
  }
  progress_.job_finished(job, now_seconds() - w.started);
  progress_.update(done_, written_, busy(), read_);
}

// Stops handing out jobs and stops the workers; their chunks are whole (temp + rename).
void LocalRun::stop_on_signal() {
  for (auto& [pid, w] : running_) {
    kill(pid, SIGTERM);
    kill(pid, SIGCONT);  // a stopped worker acts on it now
  }
  const double until = now_seconds() + 2.0;
  while (!running_.empty() && now_seconds() < until) {
    const pid_t p = waitpid(-1, nullptr, WNOHANG);
    if (p > 0 && running_.count(p)) {
      close_socket(running_[p]);
      running_.erase(p);
    } else if (p <= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }
  kill_all();
  progress_.finish();
  throw_if_terminated("the cache run was");
}

// Idle workers take the next job, or are told there is none (they exit).
void LocalRun::hand_out_to_idle() {
  for (auto& [pid, w] : running_) {
    if (w.job || w.released) continue;
    if (failures_.empty() && !queue_.empty()) {
      const int64_t job = queue_.front();
      queue_.pop_front();
      hand_out(w, job);
    } else if (const auto copy =
                   failures_.empty() ? job_to_copy(now_seconds()) : std::optional<int64_t>{}) {
      start_copy(w, *copy);
    } else if (failures_.empty() && copy_may_come()) {
      continue;  // idle for now: a running job may turn out slow
    } else {
      if (w.socket >= 0) ::shutdown(w.socket, SHUT_WR);
      w.released = true;
    }
  }
}

void LocalRun::spawn_workers() {
  while (failures_.empty() && !queue_.empty() && static_cast<int>(running_.size()) < workers_) {
    const int64_t job = queue_.front();
    queue_.pop_front();
    Worker w;
    w.id = fmt::format("local-{}-{}", getpid(), serial_++);
    w.forked = fork_;
    std::vector<int> others;
    for (const auto& [p, o] : running_) {
      if (o.socket >= 0) others.push_back(o.socket);
      if (o.exited) others.push_back(*o.exited);
    }
    const pid_t pid = spawn_worker(exe_, ctx_, job, w, others);
    w.exited = open_pidfd(pid);
    Worker& in = running_[pid] = std::move(w);
    hand_out(in, job);
  }
}

// Reaps a worker that exited, if one did; true then.
bool LocalRun::reap() {
  int status = 0;
  const pid_t pid = waitpid(-1, &status, WNOHANG);
  if (pid <= 0 || !running_.count(pid)) return false;
  Worker w = std::move(running_[pid]);
  running_.erase(pid);
  for (const int64_t job : read_replies(w)) finished(pid, w, job);  // sent just before exiting
  close_socket(w);
  if (w.job) {
    job_ended(*w.job, status);
  } else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) && !w.released) {
    log_line(ctx_.log_level, 1,
             fmt::format("worker {} ended between jobs ({})", w.id, describe(status)));
  }
  return true;
}

namespace {

// A worker killed by the signal a terminal sends its whole process group (Ctrl-C, hang-up) while
// this run is told of it a moment later (Python's signal handler is polled): wait up to a second
// for that, so the run stops instead of rerunning the job as lost.
bool stopped_with_the_group(int status) {
  if (!WIFSIGNALED(status)) return false;
  const int sig = WTERMSIG(status);
  if (sig != SIGINT && sig != SIGTERM && sig != SIGHUP) return false;
  for (int i = 0; i < 50 && termination_signal() == 0; ++i) usleep(20000);
  return termination_signal() != 0;
}

}  // namespace

// The worker running `job` ended before finishing it: run it again, or fail the run.
void LocalRun::job_ended(int64_t job, int status) {
  const std::string why = describe(status);
  if (done_jobs_.count(job)) return;           // a losing copy, stopped
  if (stopped_with_the_group(status)) return;  // run() stops on the signal next
  // A worker a library crashed while decoding (its crash note in the log): the data is at fault,
  // and a rerun would crash the same way.
  const bool permanent =
      permanent_failure(status) ||
      (WIFSIGNALED(status) && !crash_note_in(log_tail(files_.log_path(job))).empty());
  for (const auto& [p, other] : running_) {
    if (other.job == job && !permanent) {
      log_line(ctx_.log_level, 1,
               fmt::format("job {}: a copy was lost ({}), the other goes on", job, why));
      return;
    }
  }
  if (!permanent && attempts_[job] < kMaxAttempts) {
    log_line(ctx_.log_level, 1,
             fmt::format("job {} lost ({}), running it again (attempt {} of {})", job, why,
                         attempts_[job] + 1, kMaxAttempts));
    queue_.push_back(job);
    stopped_copies_ = true;
    return;
  }
  failures_.push_back(fmt::format("job {} failed ({}), log {}:{}{}", job, why, files_.log_path(job),
                                  log_tail(files_.log_path(job)),
                                  store_disk_state(ctx_.store.root())));
  kill_all();
  queue_.clear();
}

// The caller's check (a store on S3: its lease lost) stops every worker before it writes more.
void LocalRun::tick() {
  if (!ctx_.on_tick) return;
  try {
    ctx_.on_tick();
  } catch (...) {
    kill_all();
    progress_.finish();
    throw;
  }
}

// Workers whose heartbeat stopped (hung, stopped, node gone) are killed, then retried.
void LocalRun::check_heartbeats(double now) {
  for (auto& [p, w] : running_) {
    if (!w.job) continue;
    const auto hb = files_.heartbeat(w.id);
    if (hb) report_heartbeat(progress_, *w.job, *hb);
    if (hb) progress_from_heartbeat(*hb, *w.job, w.progress);
    const double last = std::max(w.started, hb ? beat_time(*hb, now) : 0.0);
    if (now - last > static_cast<double>(worker_timeout_)) {
      log_line(ctx_.log_level, 1,
               fmt::format("job {}: no heartbeat for {} s, stopping worker {}", *w.job,
                           worker_timeout_, p));
      kill(p, SIGKILL);
      w.started = now;  // do not kill twice while it is reaped
    }
  }
}

// Speculative copies. A job's output is deterministic and every file is written by an atomic
// rename, so two copies of a job may run at once: the first to finish wins, the other is stopped.
// When copies pay: plan/copy_rule.

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

// What a copy of `job` is expected to take: the median seconds per weight times its weight.
double LocalRun::copy_seconds(int64_t job) const {
  return median(durations_) * weight_of(ctx_.plan, job);
}

int64_t LocalRun::chunks_of(int64_t job) const {
  const auto id = static_cast<std::size_t>(job);
  return id < ctx_.plan.jobs.size() ? ctx_.plan.jobs[id].region.num_chunks() : 0;
}

// The oldest running job, without a copy yet, that a copy started now would finish first.
std::optional<int64_t> LocalRun::job_to_copy(double now) const {
  if (speculative_copies_off() || durations_.size() < finished_before_copies(jobs_in_run_))
    return std::nullopt;
  const Worker* oldest = nullptr;
  for (const auto& [pid, w] : running_) {
    if (!w.job || w.copy || copied_.count(*w.job)) continue;
    const double copy = copy_seconds(*w.job);
    if (!copy_pays(w.progress.started, expected_finish(w.progress, now, copy), now, copy)) continue;
    if (!oldest || w.started < oldest->started) oldest = &w;
  }
  // A job whose done marker is there needs no copy (its worker is about to report it).
  if (!oldest || ctx_.state.is_done(*oldest->job)) return std::nullopt;
  return oldest->job;
}

// True while a running job could still get a copy: an idle worker then waits instead of exiting.
bool LocalRun::copy_may_come() const {
  if (speculative_copies_off()) return false;
  for (const auto& [pid, w] : running_)
    if (w.job && !w.copy && !copied_.count(*w.job)) return true;
  return false;
}

void LocalRun::start_copy(Worker& w, int64_t job) {
  copied_.insert(job);
  const double now = now_seconds(), typical = copy_seconds(job);
  for (const auto& [pid, first] : running_)
    if (first.job == job)
      log_line(ctx_.log_level, 1,
               fmt::format("job {}: started a copy on worker {}, the first was slow (ran {:.2f} "
                           "s, expected to end in {:.2f} s; a copy takes {:.2f} s)",
                           job, w.id, now - first.started,
                           expected_finish(first.progress, now, typical) - now, typical));
  w.job = job;
  w.copy = true;
  w.started = now_seconds();
  w.progress = {w.started, 0, 0, chunks_of(*w.job)};
  send_job(w, job);  // not an attempt: the first copy goes on
}

// `job` is done: the other copies of it stop (SIGKILL works on a stopped worker too).
void LocalRun::stop_other_copies(pid_t winner, int64_t job) {
  for (auto& [pid, w] : running_) {
    if (pid == winner || w.job != job) continue;
    log_line(ctx_.log_level, 1,
             fmt::format("job {}: stopping the other copy on worker {}", job, w.id));
    kill(pid, SIGKILL);
    stopped_copies_ = true;
  }
}

void LocalRun::run() {
  while (!queue_.empty() || !running_.empty()) {
    if (termination_signal() != 0) stop_on_signal();
    for (auto& [pid, w] : running_)
      for (const int64_t job : read_replies(w)) finished(pid, w, job);
    hand_out_to_idle();
    spawn_workers();
    if (reap()) continue;
    const double now = now_seconds();
    if (now - last_check_ < 1.0) {
      wait_for_workers(running_, 20);
      continue;
    }
    last_check_ = now;
    tick();
    check_heartbeats(now);
    progress_.update(done_, written_, busy(), read_);
  }
  // Every worker is gone: what a stopped copy was writing can go.
  if (stopped_copies_) remove_stale_temporaries(ctx_.store.root(), ctx_.plan);
  progress_.finish();
  if (!failures_.empty()) {
    std::string msg = "the cache is incomplete; fix the cause and run again with resume: true";
    for (const auto& f : failures_) msg += "\n  " + f;
    throw Error(ErrorKind::Job, msg);
  }
}

}  // namespace

void run_local(const RunContext& ctx, const std::vector<int64_t>& jobs, int workers,
               int64_t worker_timeout) {
  LocalRun(ctx, jobs, workers, worker_timeout).run();
}

}  // namespace zp
