// Error: the one exception type of zarr-parallel. It carries a kind (which maps to the CLI's exit
// code) and a message that names what failed and where (file, variable, chunk, config key).
// Thrown across threads as std::exception_ptr by the thread pool; immutable, so thread-safe.
#pragma once

#include <stdexcept>
#include <string>

namespace zp {

enum class ErrorKind {
  Internal = 1,         // a bug: should never happen
  Config = 2,           // bad command line or configuration
  Recommendations = 3,  // stopped to show recommendations
  Source = 4,           // source missing, unreadable or undecodable
  Store = 5,            // cache store cannot be written or is in the wrong state
  Job = 6,              // jobs failed in workers after retries
  Interrupted = 7,      // stopped by SIGTERM/SIGINT/SIGHUP; the CLI exits 128 + signal
  Transient = 8,        // a remote source kept failing (timeouts, resets, 429/5xx) after retries;
                        // executors retry such a job, and running again may succeed
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, std::string message);

  static Error config(const std::string& key, const std::string& what);
  static Error source(const std::string& where, const std::string& what);
  // A source file that is not there (the Python module raises FileNotFoundError for it).
  static Error source_missing(const std::string& where, const std::string& what);
  static Error transient(const std::string& where, const std::string& what);
  static Error store(const std::string& path, const std::string& what);
  static Error internal(const std::string& what);

  ErrorKind kind() const { return kind_; }
  int exit_code() const { return static_cast<int>(kind_); }
  bool missing() const { return missing_; }

 private:
  ErrorKind kind_;
  bool missing_ = false;
};

// "errno text" for messages about failed system calls.
std::string errno_text(int err);

}  // namespace zp
