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

struct sigaction g_host_sigint;
std::atomic<int> g_relay_depth{0};

// Async-signal-safe: a flag, then the host's own handler (or its default action).
void relay_sigint(int sig, siginfo_t* info, void* context) {
  const struct sigaction& host = g_host_sigint;
  if (!(host.sa_flags & SA_SIGINFO) && host.sa_handler == SIG_IGN) return;
  g_signal = sig;
  if (host.sa_flags & SA_SIGINFO) {
    host.sa_sigaction(sig, info, context);
  } else if (host.sa_handler == SIG_DFL) {
    sigaction(sig, &host, nullptr);
    raise(sig);
  } else {
    host.sa_handler(sig);
  }
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

InterruptRelay::InterruptRelay() {
  if (g_relay_depth++ > 0) return;  // nested: the first one relays (never to itself)
  g_signal = 0;
  struct sigaction sa {};
  sa.sa_sigaction = relay_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;  // no SA_RESTART, as the guard
  sigaction(SIGINT, &sa, &g_host_sigint);
}

InterruptRelay::~InterruptRelay() {
  if (--g_relay_depth > 0) return;
  sigaction(SIGINT, &g_host_sigint, nullptr);
}

void request_termination(int sig) {
  g_signal = sig;
}

int termination_signal() {
  return g_signal;
}

void throw_if_terminated(const char* what) {
  const int sig = g_signal;
  if (sig == 0) return;
  throw Error(ErrorKind::Interrupted,
              std::string(what) + " stopped by signal " + std::to_string(sig) + " (" +
                  strsignal(sig) +
                  "); the store is incomplete: run the same cache again to continue it "
                  "(finished jobs are kept; resume: true says so explicitly)");
}

}  // namespace zp
