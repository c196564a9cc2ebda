#include "source/scan_child.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "core/crash_note.hpp"
#include "core/error.hpp"
#include "source/scan_cache.hpp"

extern char** environ;

namespace zp {

namespace {

// What the child printed on stderr before its last this many bytes is dropped.
constexpr std::size_t kMaxErrorText = 64 << 10;

struct Child {
  pid_t pid = -1;
  int out = -1, err = -1;
};

void close_pair(int fds[2]) {
  ::close(fds[0]);
  ::close(fds[1]);
}

// Starts `args` with stdout and stderr piped back, and `input` (at most a pipe's buffer: options
// and secrets, never data) on its stdin; nothing of `input` reaches its argv or environment.
Child spawn_scanner(std::vector<std::string> args, const std::string& input,
                    const std::string& path) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  int out[2], err[2], in[2];
  if (::pipe2(out, O_CLOEXEC) != 0)
    throw Error::source(path, "cannot start a scanner: " + errno_text(errno));
  if (::pipe2(err, O_CLOEXEC) != 0) {
    close_pair(out);
    throw Error::source(path, "cannot start a scanner: " + errno_text(errno));
  }
  if (::pipe2(in, O_CLOEXEC) != 0) {
    close_pair(out);
    close_pair(err);
    throw Error::source(path, "cannot start a scanner: " + errno_text(errno));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  Child c;
  const int rc = posix_spawn(&c.pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(err[1]);
  ::close(in[0]);
  if (rc == 0 && !input.empty() &&
      ::write(in[1], input.data(), input.size()) != static_cast<ssize_t>(input.size())) {
    ::kill(c.pid, SIGKILL);
    ::waitpid(c.pid, nullptr, 0);
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    throw Error::source(path, "cannot hand the scanner its options");
  }
  ::close(in[1]);
  if (rc != 0) {
    ::close(out[0]);
    ::close(err[0]);
    throw Error::source(path, "cannot start a scanner: " + errno_text(rc));
  }
  c.out = out[0];
  c.err = err[0];
  return c;
}

// Drains both pipes until they close or the child is silent for `timeout_s`; true when they
// closed in time. A child scanning many files says so on stderr as it finishes each.
bool drain(Child& c, std::string& out, std::string& err, int timeout_s) {
  using clock = std::chrono::steady_clock;
  auto deadline = clock::now() + std::chrono::seconds(timeout_s);
  pollfd polls[2] = {{c.out, POLLIN, 0}, {c.err, POLLIN, 0}};
  int* fds[2] = {&c.out, &c.err};
  std::string* sinks[2] = {&out, &err};
  std::vector<char> buf(1 << 16);
  int open = 2;
  while (open > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    if (::poll(polls, 2, static_cast<int>(left.count())) < 0 && errno != EINTR) return false;
    for (int i = 0; i < 2; ++i) {
      if (polls[i].fd < 0 || !(polls[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(polls[i].fd, buf.data(), buf.size());
      if (n > 0) {
        sinks[i]->append(buf.data(), static_cast<std::size_t>(n));
        // stderr's tail is kept: the error line and a crash note come last.
        if (i == 1 && err.size() > 2 * kMaxErrorText) err.erase(0, err.size() - kMaxErrorText);
        deadline = clock::now() + std::chrono::seconds(timeout_s);  // the child is working
      } else if (n == 0 || errno != EINTR) {
        ::close(polls[i].fd);
        polls[i].fd = *fds[i] = -1;
        --open;
      }
    }
  }
  return true;
}

// What `err` says after `prefix` ("zarr-parallel: error: ") to its end (a message may take
// several lines: the groups of a mixed GRIB file), or "" when it printed none.
std::string line_after(const std::string& err, const std::string& prefix) {
  for (std::size_t at = 0; at < err.size();) {
    const auto end = std::min(err.find('\n', at), err.size());
    if (err.compare(at, prefix.size(), prefix) == 0) {
      std::string text = err.substr(at + prefix.size());
      while (!text.empty() && text.back() == '\n') text.pop_back();
      return text;
    }
    at = end + 1;
  }
  return {};
}

// The child's own error, as the CLI printed it, with the kind its exit code names. A child that
// printed none crashed in a way the runtime caught (a sanitizer's report, an abort handler).
Error child_error(int code, const std::string& err, const std::string& path, const char* library) {
  std::string line = line_after(err, "zarr-parallel: error: ");
  if (line.empty()) line = line_after(err, "zarr-parallel: internal error: ");
  if (line.empty())
    return Error::source(path, "describing the file failed (exit " + std::to_string(code) +
                                   ", no message): " + library + " crashed or the file is damaged");
  if (code != 2 && line.find(path) == std::string::npos) line = path + ": " + line;
  switch (code) {
    case 2:
      return Error(ErrorKind::Config, line);
    case 8:
      return Error(ErrorKind::Transient, line);
    default:
      if (path.find("://") == std::string::npos && file_state(path).first < 0)
        return Error::source_missing(path, "no such file");  // a local file gone meanwhile
      return Error(ErrorKind::Source, line);
  }
}

}  // namespace

int scan_timeout_seconds() {
  const char* s = std::getenv("ZP_SCAN_TIMEOUT");
  const int v = s ? std::atoi(s) : 0;
  return v > 0 ? v : 120;
}

namespace {

// Runs one scanner child to its end under the time limit: its stdout, or the error it, a signal
// or the limit makes, naming `path` (and, for a signal, what its crash note says it was reading).
std::string run_scanner(std::vector<std::string> args, const std::string& input,
                        const std::string& path, const char* library = "libhdf5") {
  Child c = spawn_scanner(std::move(args), input, path);
  std::string out, err;
  const int timeout = scan_timeout_seconds();
  const bool in_time = drain(c, out, err, timeout);
  if (!in_time) ::kill(c.pid, SIGKILL);
  for (int fd : {c.out, c.err})
    if (fd >= 0) ::close(fd);
  int status = 0;
  while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!in_time)
    throw Error::source(path, "describing the file took more than " + std::to_string(timeout) +
                                  " s (" + library +
                                  " loops on some damaged files; ZP_SCAN_TIMEOUT "
                                  "sets the limit): the file is damaged or unreadable here");
  if (WIFSIGNALED(status)) {
    const std::string note = crash_note_in(err);
    throw Error::source(note.empty() ? path : note,
                        std::string(library) + " crashed reading the file's metadata (signal " +
                            std::to_string(WTERMSIG(status)) +
                            "): the file is damaged or not what it claims to be");
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw child_error(WIFEXITED(status) ? WEXITSTATUS(status) : 1, err, path, library);
  return out;
}

}  // namespace

std::string describe_in_child(const std::string& path, const std::string& group) {
  return run_scanner({scan_executable(), "scan-parts", "--group", group, "--", path}, "", path);
}

std::string describe_url_in_child(const std::string& url, const std::string& group,
                                  const std::string& access_text) {
  if (access_text.size() > 60000)  // a pipe's buffer: written before the child reads
    throw Error::source(url, "storage options too large to hand to a scanner");
  return run_scanner({scan_executable(), "describe-url", "--group", group, "--", url}, access_text,
                     url);
}

std::string write_file_list(const std::vector<std::string>& files, std::size_t index) {
  const std::string list = std::filesystem::temp_directory_path().string() + "/zp-scan-" +
                           std::to_string(::getpid()) + "-" + std::to_string(index);
  const int lfd = ::open(list.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (lfd < 0) return "";
  std::string names;
  for (const auto& f : files) names += f + '\0';
  const bool written =
      ::write(lfd, names.data(), names.size()) == static_cast<ssize_t>(names.size());
  ::close(lfd);
  if (!written) ::unlink(list.c_str());
  return written ? list : "";
}

std::string describe_grib_in_child(const std::vector<std::string>& files,
                                   const std::string& filter_text, const std::string& uri) {
  static std::atomic<std::size_t> lists{1u << 20};  // apart from scan_children's numbers
  const std::string list = write_file_list(files, lists++);
  if (list.empty()) throw Error::source(uri, "cannot write the list of files for a scanner");
  struct Remover {
    const std::string& path;
    ~Remover() { ::unlink(path.c_str()); }
  } remover{list};
  return run_scanner(
      {scan_executable(), "scan-grib", "--filter", filter_text, "--files-from", list, "--", uri},
      "", uri, "ecCodes");
}

std::string describe_grib_url_in_child(const std::string& url, const std::string& filter_text,
                                       const std::string& access_text) {
  if (access_text.size() > 60000)  // a pipe's buffer: written before the child reads
    throw Error::source(url, "storage options too large to hand to a scanner");
  return run_scanner({scan_executable(), "scan-grib", "--url", "--filter", filter_text, "--", url},
                     access_text, url, "ecCodes");
}

}  // namespace zp
