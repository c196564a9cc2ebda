#include "core/console.hpp"

#include <stdio_ext.h>

#include <atomic>

namespace zp {

namespace {

std::atomic<bool> g_stdout_closed{false}, g_stderr_closed{false};

std::atomic<bool>* closed_flag(std::FILE* stream) {
  if (stream == stdout) return &g_stdout_closed;
  if (stream == stderr) return &g_stderr_closed;
  return nullptr;
}

}  // namespace

void say(std::FILE* stream, std::string_view text) {
  std::atomic<bool>* closed = closed_flag(stream);
  if (closed && *closed) return;
  const bool written = std::fwrite(text.data(), 1, text.size(), stream) == text.size();
  if ((!written || std::fflush(stream) != 0) && closed) {
    // EPIPE (the reader left) or EIO (the terminal went): nobody reads what follows.
    *closed = true;
    __fpurge(stream);  // nor at exit
    std::clearerr(stream);
  }
}

}  // namespace zp
