#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <thread>

#include "core/error.hpp"
#include "exec/executor.hpp"
#include "exec/progress.hpp"
#include "exec/termination.hpp"

namespace zp {

namespace {

struct Running {
  int64_t job;
  std::string worker;
  double started;
  // A pidfd, readable when the worker exits: the coordinator wakes at once instead of at its
  // next 20 ms poll. Null where the kernel has no pidfd_open (before Linux 5.3).
  std::shared_ptr<int> exited;
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

// Sleeps up to `ms`, less when a running worker exits.
void wait_for_exit(const std::map<pid_t, Running>& running, int ms) {
  std::vector<pollfd> fds;
  for (const auto& [pid, r] : running)
    if (r.exited) fds.push_back({*r.exited, POLLIN, 0});
  if (fds.size() != running.size() || fds.empty()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return;
  }
  // EINTR (a signal) just ends the wait early. A pidfd stays readable until its worker is reaped:
  // the short sleep keeps a worker that is slow to be reapable from making this loop spin.
  if (::poll(fds.data(), fds.size(), ms) > 0)
    std::this_thread::sleep_for(std::chrono::microseconds(500));
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

namespace {

pid_t spawn_worker(const std::string& exe, const RunContext& ctx, int64_t job,
                   const std::string& worker) {
  const std::string log = ctx.state.log_path(job);
  std::filesystem::create_directories(std::filesystem::path(log).parent_path());
  std::vector<std::string> args = {exe,
                                   "worker",
                                   ctx.state.plan_path(),
                                   std::to_string(job),
                                   "--threads",
                                   std::to_string(ctx.plan.threads_per_worker),
                                   "--worker-id",
                                   worker};
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw Error::internal(std::string("fork failed: ") + errno_text(errno));
  if (pid == 0) {
    // A worker dies with its coordinator, however the coordinator dies, so no orphan keeps
    // writing into a store that a later run may have taken over.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    // The coordinator's handlers do not apply here: a signal ends a worker.
    for (int sig : {SIGTERM, SIGINT, SIGHUP}) signal(sig, SIG_DFL);
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(exe.c_str(), argv.data());
    _exit(127);
  }
  return pid;
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

void set_worker_executable(const std::string& path) {
  worker_executable() = path;
}

void run_local(const RunContext& ctx, const std::vector<int64_t>& jobs, int workers,
               int64_t worker_timeout) {
  const std::string exe = worker_executable_path();
  std::deque<int64_t> queue(jobs.begin(), jobs.end());
  std::map<pid_t, Running> running;
  std::map<int64_t, int> attempts;
  std::vector<std::string> failures;
  Progress progress(static_cast<int64_t>(jobs.size()), ctx.log_level);
  int64_t done = 0;
  uint64_t written = 0, read = 0;
  int serial = 0;
  double last_check = 0;
  auto kill_all = [&] {
    for (auto& [pid, r] : running) kill(pid, SIGKILL);
    for (auto& [pid, r] : running) waitpid(pid, nullptr, 0);
    running.clear();
    // Workers killed mid-write leave temporary files; no one else writes here (we hold the lock).
    ctx.store.remove_stale_temporaries();
  };

  while (!queue.empty() || !running.empty()) {
    if (termination_signal() != 0) {
      // Stop handing out jobs and stop the workers; their chunks are whole (temp + rename).
      for (auto& [pid, r] : running) {
        kill(pid, SIGTERM);
        kill(pid, SIGCONT);  // a stopped worker acts on it now
      }
      const double until = now_seconds() + 2.0;
      while (!running.empty() && now_seconds() < until) {
        const pid_t p = waitpid(-1, nullptr, WNOHANG);
        if (p > 0)
          running.erase(p);
        else
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      kill_all();
      progress.finish();
      throw_if_terminated("the cache run was");
    }
    while (failures.empty() && !queue.empty() && static_cast<int>(running.size()) < workers) {
      const int64_t job = queue.front();
      queue.pop_front();
      ++attempts[job];
      const std::string worker = fmt::format("local-{}-{}", getpid(), serial++);
      const pid_t pid = spawn_worker(exe, ctx, job, worker);
      running[pid] = {job, worker, now_seconds(), open_pidfd(pid)};
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0 && running.count(pid)) {
      const Running r = running[pid];
      running.erase(pid);
      if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && ctx.state.is_done(r.job)) {
        ++done;
        if (const auto info = ctx.state.done_info(r.job)) {
          written += info->value("bytes_written", uint64_t{0});
          read += info->value("bytes_read", uint64_t{0});
        }
        progress.update(done, written, static_cast<int>(running.size()), read);
        progress.job_finished(r.job, now_seconds() - r.started);
        continue;
      }
      const std::string why = describe(status);
      if (!permanent_failure(status) && attempts[r.job] < kMaxAttempts) {
        log_line(ctx.log_level, 1,
                 fmt::format("job {} lost ({}), running it again (attempt {} of {})", r.job, why,
                             attempts[r.job] + 1, kMaxAttempts));
        queue.push_back(r.job);
      } else {
        failures.push_back(
            fmt::format("job {} failed ({}), log {}:{}{}", r.job, why, ctx.state.log_path(r.job),
                        log_tail(ctx.state.log_path(r.job)), store_disk_state(ctx.store.root())));
        kill_all();
        queue.clear();
      }
      continue;
    }
    // Workers whose heartbeat stopped (hung, stopped, node gone) are killed, then retried above.
    const double now = now_seconds();
    if (now - last_check < 1.0) {
      wait_for_exit(running, 20);
      continue;
    }
    last_check = now;
    for (auto& [p, r] : running) {
      const auto hb = ctx.state.heartbeat(r.worker);
      const double last = std::max(r.started, hb ? hb->value("time", 0.0) : 0.0);
      if (now - last > static_cast<double>(worker_timeout)) {
        log_line(ctx.log_level, 1,
                 fmt::format("job {}: no heartbeat for {} s, stopping worker {}", r.job,
                             worker_timeout, p));
        kill(p, SIGKILL);
        r.started = now;  // do not kill twice while it is reaped
      }
    }
    progress.update(done, written, static_cast<int>(running.size()));
  }
  progress.finish();
  if (!failures.empty()) {
    std::string msg = "the cache is incomplete; fix the cause and run again with resume: true";
    for (const auto& f : failures) msg += "\n  " + f;
    throw Error(ErrorKind::Job, msg);
  }
}

}  // namespace zp
