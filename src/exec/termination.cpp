#include "exec/termination.hpp"

#include <signal.h>
#include <string.h>

#include <atomic>
#include <string>

#include "core/error.hpp"

namespace zp {

namespace {

volatile sig_atomic_t g_signal = 0;
std::atomic<int> g_depth{0};
struct sigaction g_old[3];
constexpr int kSignals[3] = {SIGTERM, SIGINT, SIGHUP};

void on_signal(int sig) {
  g_signal = sig;
}

}  // namespace

TerminationGuard::TerminationGuard() {
  if (g_depth++ > 0) return;
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocking wait returns EINTR and the loop looks at the flag
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &sa, &g_old[i]);
}

TerminationGuard::~TerminationGuard() {
  if (--g_depth > 0) return;
  for (int i = 0; i < 3; ++i) sigaction(kSignals[i], &g_old[i], nullptr);
}

int termination_signal() {
  return g_signal;
}

void throw_if_terminated(const char* what) {
  const int sig = g_signal;
  if (sig == 0) return;
  throw Error(ErrorKind::Interrupted,
              std::string(what) + " stopped by signal " + std::to_string(sig) + " (" +
                  strsignal(sig) + "); the store is incomplete: run again with resume: true");
}

}  // namespace zp
