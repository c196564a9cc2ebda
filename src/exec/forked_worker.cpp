#include "exec/forked_worker.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "core/error.hpp"
#include "core/process_threads.hpp"
#include "exec/executor.hpp"
#include "exec/progress.hpp"
#include "exec/termination.hpp"
#include "store/url_scope.hpp"

namespace zp {

bool may_fork_workers(const Plan& plan, const std::vector<int64_t>& jobs, int workers,
                      bool exec_set) {
  const char* env = std::getenv("ZP_FORK_WORKERS");
  const std::string_view mode = env ? env : "";
  if (mode == "0" || exec_set || threads_of_this_process() != 1) return false;
  if (mode == "1") return true;
  if (jobs.size() > 2 * static_cast<std::size_t>(std::max(workers, 1))) return false;
  uint64_t bytes = 0;
  for (const int64_t id : jobs)
    if (id >= 0 && static_cast<std::size_t>(id) < plan.jobs.size())
      bytes += plan.jobs[static_cast<std::size_t>(id)].read_bytes +
               plan.jobs[static_cast<std::size_t>(id)].output_bytes;
  return bytes <= kForkedRunBytes;
}

void run_forked_worker(const Plan& plan, int threads, const std::string& worker_id, int fd,
                       const std::string& local_root, const std::string& plan_sha256) {
  set_json_events(false);  // stdout is this job's log, not the coordinator's event stream
  int code = 0;
  try {
    serve_worker_jobs(plan, threads, worker_id, fd, local_root, plan_sha256);
  } catch (const Error& e) {
    fmt::print(stderr, "zarr-parallel: error: {}\n", redact_urls_in(e.what()));
    code = e.kind() == ErrorKind::Interrupted ? 128 + termination_signal() : e.exit_code();
  } catch (const std::exception& e) {
    fmt::print(stderr, "zarr-parallel: internal error: {}\n", redact_urls_in(e.what()));
    code = 1;
  }
  std::fflush(nullptr);
  _exit(code);  // the coordinator's atexit handlers and static destructors are not ours to run
}

}  // namespace zp
