#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/error.hpp"
#include "exec/executor.hpp"
#include "exec/heartbeat.hpp"
#include "exec/progress.hpp"
#include "exec/termination.hpp"
#include "write/store_ownership.hpp"

namespace zp {

uint64_t peak_rss_bytes() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return static_cast<uint64_t>(r.ru_maxrss) * 1024;
}

nlohmann::json job_stats_json(const JobStats& s) {
  return {{"job", s.job_id},
          {"chunks", s.chunks_written},
          {"bytes_read", s.bytes_read},
          {"bytes_written", s.bytes_written},
          {"seconds", s.seconds},
          {"peak_rss", peak_rss_bytes()},
          {"pid", getpid()}};
}

void run_worker_jobs(const Plan& plan, const std::vector<int64_t>& ids, int threads,
                     const std::string& worker_id,
                     const std::function<void(const JobStats&)>& on_done) {
  FileStore store(plan.store);
  StoreState state(store);
  // A worker of an old run (a lost coordinator's orphan, a queued array task) must not write into
  // a store that has since been replaced: the store's marker must be its plan's.
  auto check_store = [&] {
    if (plan.store_id.empty()) return;
    const auto id = store_id_of(plan.store);
    if (id != plan.store_id)
      throw Error::store(plan.store, "is not the store this plan was made for (store id " +
                                         id.value_or("none") + ", plan's " + plan.store_id +
                                         "); this worker's run was replaced, nothing written");
  };
  check_store();
  ThreadPool pool(threads);
  JobRunner runner(plan, store, pool);
  Heartbeat heartbeat(state, worker_id);
  for (const int64_t id : ids) {
    if (id < 0 || static_cast<std::size_t>(id) >= plan.jobs.size())
      throw Error::config(
          "JOB_ID", fmt::format("job {} is not in the plan (0..{})", id, plan.jobs.size() - 1));
    if (state.is_done(id)) continue;
    const Job& job = plan.jobs[static_cast<std::size_t>(id)];
    heartbeat.set({{"job", id}, {"chunks_done", 0}, {"chunks_total", job.region.num_chunks()}});
    check_store();
    const JobStats stats = runner.run(job, [&](const JobStats& s) {
      heartbeat.update({{"chunks_done", s.chunks_written},
                        {"bytes_read", s.bytes_read},
                        {"bytes_written", s.bytes_written}});
      check_store();
      throw_if_terminated("the cache run was");
    });
    check_store();
    nlohmann::json done = job_stats_json(stats);
    done["worker"] = worker_id;
    state.mark_done(id, done);
    if (on_done) on_done(stats);
  }
  heartbeat.set({{"job", nullptr}, {"finished", true}});
}

void run_series(const RunContext& ctx, const std::vector<int64_t>& jobs) {
  Progress progress(static_cast<int64_t>(jobs.size()), ctx.log_level);
  int64_t done = 0;
  uint64_t bytes = 0, read = 0;
  run_worker_jobs(ctx.plan, jobs, ctx.plan.threads_per_worker, "series", [&](const JobStats& s) {
    ++done;
    bytes += s.bytes_written;
    read += s.bytes_read;
    progress.job_finished(s.job_id, s.seconds);
    progress.update(done, bytes, 1, read);
  });
  progress.finish();
}

}  // namespace zp
