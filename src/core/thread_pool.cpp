#include "core/thread_pool.hpp"

#include <atomic>
#include <exception>

namespace zp {

ThreadPool::ThreadPool(int threads) {
  // One thread: the caller runs the tasks itself; a thread it waits for would only add two
  // context switches to every parallel_for.
  if (threads <= 1) return;
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { run(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void ThreadPool::run() {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [this] { return stop_ || !tasks_.empty(); });
      if (stop_ && tasks_.empty()) return;
      task = std::move(tasks_.front());
      tasks_.pop();
    }
    task();
  }
}

void ThreadPool::parallel_for(std::size_t n, const std::function<void(std::size_t)>& f) {
  if (n == 0) return;
  if (threads_.empty() || n == 1) {
    for (std::size_t i = 0; i < n; ++i) f(i);
    return;
  }
  // Each pool thread pulls indices from a shared counter, so load balances itself.
  std::atomic<std::size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex done_mutex;
  std::condition_variable done_cv;
  std::size_t running = std::min<std::size_t>(n, threads_.size());
  auto body = [&] {
    for (std::size_t i; !failed && (i = next++) < n;) {
      try {
        f(i);
      } catch (...) {
        std::lock_guard lock(done_mutex);
        if (!failed.exchange(true)) error = std::current_exception();
      }
    }
    std::lock_guard lock(done_mutex);
    if (--running == 0) done_cv.notify_all();
  };
  const std::size_t workers = running;
  {
    std::lock_guard lock(mutex_);
    for (std::size_t w = 0; w < workers; ++w) tasks_.push(body);
  }
  cv_.notify_all();
  std::unique_lock lock(done_mutex);
  done_cv.wait(lock, [&] { return running == 0; });
  if (error) std::rethrow_exception(error);
}

}  // namespace zp
