// PendingFlushes: files written and renamed into place whose bytes are still on their way to the
// device. A writer that puts many keys before one point that needs them durable (a job before its
// done marker) starts each file's write-back as it writes it and waits for all of them once, in
// flush(): the device writes while the next chunks are encoded, instead of each chunk waiting for
// its own flush. At most kMaxPending descriptors are held; past that the oldest is waited for.
// Thread-safe.
#pragma once

#include <deque>
#include <mutex>
#include <string>
#include <utility>

namespace zp {

class PendingFlushes {
 public:
  static constexpr std::size_t kMaxPending = 64;

  PendingFlushes() = default;
  PendingFlushes(const PendingFlushes&) = delete;
  PendingFlushes& operator=(const PendingFlushes&) = delete;
  ~PendingFlushes();  // closes what is left without waiting (the job failed; it is redone)

  // Takes `fd` (write-back already started); `what` names it in errors.
  void add(int fd, std::string what);
  // Waits until every file added is on the device. Error(Store) naming the first that is not.
  void flush();

 private:
  std::mutex mutex_;
  std::deque<std::pair<int, std::string>> pending_;
};

// Waits for `fd`'s bytes (fdatasync; with `entries`, fsync: a folder's names too) to reach the
// device and closes it; Error(Store) naming `what` on failure (a file system that cannot flush,
// EINVAL, is left as it is).
void flush_and_close(int fd, const std::string& what, bool entries = false);

}  // namespace zp
