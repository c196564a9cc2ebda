// What a thread is working on, said on stderr when a library it calls kills the process (ecCodes
// asserts and aborts on some malformed GRIB messages). Each thread keeps a short note (the file
// and message it scans, the source chunk it decodes); the first note installs a handler for
// SIGABRT, SIGSEGV, SIGBUS, SIGFPE and SIGILL that writes the crashing thread's note to stderr
// ("zarr-parallel: crashed at: NOTE") and hands the signal to what handled it before (by default
// the process dies of it), so the process that started it can name what it was reading.
#pragma once

#include <string>

namespace zp {

inline constexpr const char* kCrashPrefix = "zarr-parallel: crashed at: ";

// Sets this thread's note (truncated to a few hundred bytes); "" clears it.
void set_crash_note(const std::string& note);

// Clears this thread's note when it goes out of scope.
struct CrashNoteScope {
  explicit CrashNoteScope(const std::string& note) { set_crash_note(note); }
  ~CrashNoteScope() { set_crash_note(""); }
  CrashNoteScope(const CrashNoteScope&) = delete;
  CrashNoteScope& operator=(const CrashNoteScope&) = delete;
};

// The note in a crashed process's stderr text, or "" when it wrote none.
std::string crash_note_in(const std::string& stderr_text);

}  // namespace zp
