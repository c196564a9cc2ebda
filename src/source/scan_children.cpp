#include "source/scan_children.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <thread>

#include "core/process_threads.hpp"
#include "source/netcdf_source.hpp"
#include "source/scan_cache.hpp"
#include "source/scan_child.hpp"

namespace zp {

namespace {

bool& forks_allowed() {
  static bool allowed = false;
  return allowed;
}

}  // namespace

void allow_forked_scanners(bool allow) {
  forks_allowed() = allow;
}

bool scanners_forked() {
  const char* env = std::getenv("ZP_FORK_SCANNERS");
  if (env && std::string(env) == "0") return false;
  return forks_allowed() && threads_of_this_process() == 1;
}

bool parallel_scan_on() {
  const char* on = std::getenv("ZP_PARALLEL_SCAN");
  return !(on && std::string(on) == "0") && !scan_executable().empty();
}

std::size_t scan_children_for(std::size_t n) {
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  return std::min<std::size_t>({cores, 8, n / 4});
}

std::size_t complete_parts(const std::string& out) {
  std::size_t lines = 0, end = 0;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (out[i] == '\n' && ++lines % 3 == 0) end = i + 1;
  return end;
}

namespace {

struct Child {
  pid_t pid = -1;
  int fd = -1;
};

// `zarr-parallel scan-parts` on the files of `list`, its stdout a pipe; pid -1 when it cannot
// start.
Child start_run_scanner(const std::string& list, const std::string& group, bool join,
                        const std::string& concat_dim) {
  std::vector<std::string> args = {scan_executable(), "scan-parts", "--group", group,
                                   "--files-from",    list};
  if (join) args.push_back("--join");
  if (join && !concat_dim.empty()) args.insert(args.end(), {"--concat-dim", concat_dim});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return {};
  }
  return {pid, fds[0]};
}

// A fork of this process that prints what `scan-parts` would print for `run` to its stdout, the
// pipe `fd`: no program load, no list file. Never returns.
[[noreturn]] void scan_in_fork(const std::vector<std::string>& run, const std::string& group,
                               bool join, const std::string& concat_dim, int fd) {
  for (const int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::signal(sig, SIG_DFL);
  const int null = ::open("/dev/null", O_WRONLY);
  if (::dup2(fd, 1) < 0 || null < 0 || ::dup2(null, 2) < 0) ::_exit(1);
  int code = 0;
  try {
    if (join) {
      scan_and_join(run, group, concat_dim, std::cout);
    } else {
      for (const auto& f : run) std::cout << scan_part_text(f, group) << std::flush;
    }
  } catch (...) {
    code = 1;  // the caller describes again what this child did not finish, naming the file
  }
  std::cout.flush();
  ::_exit(std::cout ? code : 1);  // the parent's atexit handlers are not this child's to run
}

// A forked scanner of `run`, its stdout a pipe; pid -1 when it cannot start.
Child start_forked_scanner(const std::vector<std::string>& run, const std::string& group, bool join,
                           const std::string& concat_dim) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return {};
  std::cout.flush();  // the child must not print what this process had buffered
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    scan_in_fork(run, group, join, concat_dim, fds[1]);
  }
  ::close(fds[1]);
  if (pid < 0) {
    ::close(fds[0]);
    return {};
  }
  return {pid, fds[0]};
}

// Reads every child's pipe as it fills until all are closed. A child that prints nothing for the
// scan time limit is killed (libhdf5 loops on some damaged files); the files it did not finish
// are described one by one, each naming itself.
void drain_pipes(const std::vector<Child>& children, std::vector<ChildOutput>& outputs) {
  std::vector<pollfd> polls;
  for (const auto& c : children) polls.push_back({c.fd, POLLIN, 0});
  std::size_t open_pipes = children.size();
  std::vector<char> buf(1 << 16);
  using Clock = std::chrono::steady_clock;
  const auto limit = std::chrono::seconds(scan_timeout_seconds());
  std::vector<Clock::time_point> last(children.size(), Clock::now());
  while (open_pipes > 0) {
    if (::poll(polls.data(), polls.size(), 1000) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (std::size_t i = 0; i < polls.size(); ++i) {
      if (polls[i].fd < 0) continue;
      if (!(polls[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        if (Clock::now() - last[i] > limit) ::kill(children[i].pid, SIGKILL);
        continue;
      }
      const ssize_t n = ::read(polls[i].fd, buf.data(), buf.size());
      if (n > 0) {
        outputs[i].out.append(buf.data(), static_cast<std::size_t>(n));
        last[i] = Clock::now();
      } else if (n == 0 || errno != EINTR) {
        ::close(polls[i].fd);
        polls[i].fd = -1;
        --open_pipes;
      }
    }
  }
  for (auto& p : polls)
    if (p.fd >= 0) ::close(p.fd);
}

// Waits for each child; ok when it exited 0.
void reap(const std::vector<Child>& children, std::vector<ChildOutput>& outputs) {
  for (std::size_t i = 0; i < children.size(); ++i) {
    int status = 0;
    while (::waitpid(children[i].pid, &status, 0) < 0 && errno == EINTR) {
    }
    outputs[i].ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
}

}  // namespace

std::vector<ChildOutput> run_scan_children(const std::vector<std::vector<std::string>>& runs,
                                           const std::string& group, bool join,
                                           const std::string& concat_dim) {
  std::vector<Child> children;
  std::vector<ChildOutput> outputs(runs.size());
  std::vector<std::string> lists;
  struct ListRemover {
    std::vector<std::string>& paths;
    ~ListRemover() {
      for (const auto& p : paths) ::unlink(p.c_str());
    }
  } remover{lists};
  // A run whose list or child fails, and the runs after it, are scanned by the caller instead.
  const bool fork = scanners_forked();
  for (const auto& run : runs) {
    if (fork) {
      const Child child = start_forked_scanner(run, group, join, concat_dim);
      if (child.pid < 0) break;
      children.push_back(child);
      continue;
    }
    const std::string list = write_file_list(run, lists.size());
    if (list.empty()) break;
    lists.push_back(list);
    const Child child = start_run_scanner(list, group, join, concat_dim);
    if (child.pid < 0) break;
    children.push_back(child);
  }
  drain_pipes(children, outputs);
  reap(children, outputs);
  return outputs;
}

}  // namespace zp
