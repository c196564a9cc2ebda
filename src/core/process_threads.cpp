#include "core/process_threads.hpp"

#include <filesystem>

namespace zp {

int threads_of_this_process() {
  std::error_code ec;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return ec ? -1 : n;
}

}  // namespace zp
