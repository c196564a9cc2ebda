#include "core/crash_note.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iterator>

namespace zp {

namespace {

constexpr std::size_t kNoteBytes = 480;
// Written by its own thread, read by the signal handler on that same thread: no lock needed.
thread_local char t_note[kNoteBytes] = {};

void write_all(const char* s, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(2, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<std::size_t>(w);
  }
}

constexpr int kSignals[] = {SIGABRT, SIGSEGV, SIGBUS, SIGFPE, SIGILL};
struct sigaction g_before[std::size(kSignals)];  // what ran before: a host's, a sanitizer's

// Async-signal-safe: write(2) only, then what handled the signal before (the default: death).
void on_crash(int sig) {
  if (t_note[0]) {
    write_all(kCrashPrefix, std::strlen(kCrashPrefix));
    write_all(t_note, ::strnlen(t_note, kNoteBytes));
    write_all("\n", 1);
  }
  for (std::size_t i = 0; i < std::size(kSignals); ++i)
    if (kSignals[i] == sig) sigaction(sig, &g_before[i], nullptr);
  ::raise(sig);
}

// Once, when a note is first left: a process that never runs such a library keeps its handlers.
void install_handler() {
  static const bool installed = [] {
    struct sigaction sa {};
    sa.sa_handler = on_crash;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NODEFER;
    for (std::size_t i = 0; i < std::size(kSignals); ++i) sigaction(kSignals[i], &sa, &g_before[i]);
    return true;
  }();
  (void)installed;
}

}  // namespace

void set_crash_note(const std::string& note) {
  if (!note.empty()) install_handler();
  const std::size_t n = std::min(note.size(), kNoteBytes - 1);
  std::memcpy(t_note, note.data(), n);
  t_note[n] = '\0';
}

std::string crash_note_in(const std::string& err) {
  const std::size_t at = err.rfind(kCrashPrefix);
  if (at == std::string::npos) return "";
  const std::size_t from = at + std::strlen(kCrashPrefix);
  return err.substr(from, err.find('\n', from) - from);
}

}  // namespace zp
