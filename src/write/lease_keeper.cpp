#include "write/lease_keeper.hpp"

#include <chrono>

namespace zp {

LeaseKeeper::LeaseKeeper(StoreLease& lease) : lease_(lease), thread_([this] { loop(); }) {}

LeaseKeeper::~LeaseKeeper() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void LeaseKeeper::loop() {
  const auto every = std::chrono::duration<double>(lease_.seconds() / 4);
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, every, [this] { return stopping_; })) {
    lock.unlock();
    std::exception_ptr error;
    try {
      lease_.renew();
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error) {
      failed_ = error;  // no more renewals: the run stops at its next check()
      return;
    }
  }
}

void LeaseKeeper::check() {
  throw_if_lost();
  lease_.verify();
}

void LeaseKeeper::throw_if_lost() {
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    error = failed_;
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace zp
