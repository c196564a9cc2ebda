#include "store/pending_flushes.hpp"

#include <unistd.h>

#include <cerrno>
#include <exception>

#include "core/error.hpp"

namespace zp {

void flush_and_close(int fd, const std::string& what, bool entries) {
  const int rc = entries ? ::fsync(fd) : ::fdatasync(fd);
  const int err = errno;
  const int closed = ::close(fd);
  const int close_err = errno;
  if (rc != 0 && err != EINVAL)
    throw Error::store(what, "cannot write it to the device: " + errno_text(err));
  if (closed != 0) throw Error::store(what, "cannot write it: " + errno_text(close_err));
}

PendingFlushes::~PendingFlushes() {
  for (const auto& [fd, what] : pending_) ::close(fd);
}

void PendingFlushes::add(int fd, std::string what) {
  std::pair<int, std::string> oldest{-1, {}};
  {
    const std::lock_guard guard(mutex_);
    pending_.emplace_back(fd, std::move(what));
    if (pending_.size() > kMaxPending) {
      oldest = std::move(pending_.front());
      pending_.pop_front();
    }
  }
  if (oldest.first >= 0) flush_and_close(oldest.first, oldest.second);
}

void PendingFlushes::flush() {
  std::deque<std::pair<int, std::string>> all;
  {
    const std::lock_guard guard(mutex_);
    all.swap(pending_);
  }
  std::exception_ptr first;
  for (const auto& [fd, what] : all) {
    try {
      flush_and_close(fd, what);
    } catch (...) {
      if (!first) first = std::current_exception();  // the rest are still closed
    }
  }
  if (first) std::rethrow_exception(first);
}

}  // namespace zp
