// The crash note: a process a library kills says what the crashing thread was reading.
#include "core/crash_note.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <thread>

namespace {

// Runs `body` in a forked child whose stderr comes back; its wait status in `status`.
template <class F>
std::string child_stderr(F body, int& status) {
  int fds[2];
  if (::pipe(fds) != 0) return "pipe failed";
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 2);
    ::close(fds[0]);
    body();
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string err;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;)
    err.append(buf, static_cast<std::size_t>(n));
  ::close(fds[0]);
  ::waitpid(pid, &status, 0);
  return err;
}

}  // namespace

TEST(CrashNote, AnAbortInAThreadSaysThatThreadsNoteAndDiesOfTheSignal) {
  int status = 0;
  const std::string err = child_stderr(
      [] {
        zp::set_crash_note("other thread");
        std::thread([] {
          zp::set_crash_note("f.grib: message 3 at byte 7");
          std::abort();
        }).join();
      },
      status);
  ASSERT_TRUE(WIFSIGNALED(status)) << err;
  EXPECT_EQ(WTERMSIG(status), SIGABRT);
  EXPECT_EQ(zp::crash_note_in(err), "f.grib: message 3 at byte 7") << err;
}

TEST(CrashNote, ANoteOutOfScopeSaysNothing) {
  int status = 0;
  const std::string err = child_stderr(
      [] {
        { const zp::CrashNoteScope note("decoding x"); }
        std::abort();
      },
      status);
  ASSERT_TRUE(WIFSIGNALED(status)) << err;
  EXPECT_EQ(zp::crash_note_in(err), "") << err;
}
