// Termination: while a coordinator runs jobs, SIGTERM, SIGINT and SIGHUP (a scheduler's cancel, ^C,
// a closed terminal) no longer kill it outright; they set a flag that the executors check. An
// executor then stops handing out jobs, stops its workers, and throws Error(Interrupted); the lock
// is released on the way out and the store stays resumable. Outside a TerminationGuard the default
// actions apply.
#pragma once

namespace zp {

class TerminationGuard {
 public:
  TerminationGuard();   // installs the handlers (nested guards share them)
  ~TerminationGuard();  // restores the previous dispositions
  TerminationGuard(const TerminationGuard&) = delete;
  TerminationGuard& operator=(const TerminationGuard&) = delete;
};

// For a host process that keeps its own SIGINT handler (Python: KeyboardInterrupt, Jupyter's
// "interrupt kernel"): SIGINT sets the flag the executors check, at once, and is passed on to the
// host's handler. SIGTERM and SIGHUP keep the host's dispositions. A host that ignores SIGINT
// keeps ignoring it; one that left it at the default action still dies of it.
class InterruptRelay {
 public:
  InterruptRelay();
  ~InterruptRelay();
  InterruptRelay(const InterruptRelay&) = delete;
  InterruptRelay& operator=(const InterruptRelay&) = delete;
};

// Sets the flag as if `sig` had arrived (a host that learnt of an interrupt its own way).
void request_termination(int sig);

// The signal received under a guard, or 0.
int termination_signal();

// Throws Error(Interrupted) naming the signal when one was received.
void throw_if_terminated(const char* what);

}  // namespace zp
