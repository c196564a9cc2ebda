// LeaseKeeper: renews a StoreLease from its own thread every quarter of the lease's life while the
// run lives, so planning, metadata and long jobs never run on an expired lease. A renewal that
// fails (the lease taken over, the store unreachable) is kept: check() throws it, and the run calls
// check() before each job, each job's record, the consolidated metadata and the completion marker.
#pragma once

#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "write/store_lease.hpp"

namespace zp {

class LeaseKeeper {
 public:
  explicit LeaseKeeper(StoreLease& lease);
  ~LeaseKeeper();  // stops the thread (the lease itself is released by its owner)
  LeaseKeeper(const LeaseKeeper&) = delete;
  LeaseKeeper& operator=(const LeaseKeeper&) = delete;

  // Throws the failed renewal's error, else confirms the lease is still ours (Error(Store) if not).
  void check();
  // Throws the failed renewal's error, if one failed; asks the store nothing (a loop's cheap
  // check: the lease is verified at every renewal).
  void throw_if_lost();

 private:
  void loop();
  StoreLease& lease_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::exception_ptr failed_;
  std::thread thread_;
};

}  // namespace zp
