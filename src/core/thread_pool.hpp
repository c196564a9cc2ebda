// ThreadPool: a fixed set of threads running submitted tasks. parallel_for() runs f(0..n-1) on the
// pool and rethrows the first exception a task threw, after every task has finished, so buffers the
// tasks use may live on the caller's stack. One pool per worker process: the thread budget is set
// once; a pool of one runs its tasks in the calling thread. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace zp {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_.empty() ? 1 : static_cast<int>(threads_.size()); }
  void parallel_for(std::size_t n, const std::function<void(std::size_t)>& f);

 private:
  void run();
  std::vector<std::thread> threads_;
  std::queue<std::function<void()>> tasks_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stop_ = false;
};

}  // namespace zp
