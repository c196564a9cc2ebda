#include <fcntl.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <optional>

#include "core/console.hpp"
#include "core/error.hpp"
#include "exec/executor.hpp"
#include "exec/heartbeat.hpp"
#include "exec/progress.hpp"
#include "exec/termination.hpp"
#include "store/store_table.hpp"
#include "write/output_store.hpp"
#include "write/store_claim.hpp"
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

namespace {

// A worker process's jobs: the store check, thread pool, runner and heartbeat serve every job it
// is given.
class WorkerJobs {
 public:
  // `local_root`: the folder for this worker's logs and heartbeats when the store is on S3 (the
  // coordinator's scratch folder; "": heartbeats in the store); a folder store keeps them in its
  // side folder.
  WorkerJobs(const Plan& plan, int threads, const std::string& worker_id,
             const std::string& local_root)
      : plan_(plan),
        store_(open_output_store(plan)),
        state_(*store_),
        remote_(backend_of(plan.store) == Backend::S3),
        files_(files_root(plan, local_root)),
        files_state_(files_),
        worker_id_(worker_id),
        checked_((check_store(), true)),
        pool_(threads),
        runner_(plan, *store_, pool_),
        heartbeat_(remote_ && local_root.empty() ? state_ : files_state_, worker_id) {}

  // The heartbeat says this worker ended normally.
  void finish() { heartbeat_.set({{"job", nullptr}, {"finished", true}}); }
  // Between jobs: the heartbeat no longer tells of the last one.
  void idle() { heartbeat_.set({{"job", nullptr}}); }
  bool is_done(int64_t id) const { return state_.is_done(id); }

  // Where this worker's job logs go.
  const StoreState& logs() const { return files_state_; }

  // Runs job `id` unless it is done already; marks it done when its chunks are all in place.
  std::optional<JobStats> run(int64_t id,
                              const std::function<void(const JobStats&)>& on_chunk = {}) {
    if (id < 0 || static_cast<std::size_t>(id) >= plan_.jobs.size())
      throw Error::config(
          "JOB_ID", fmt::format("job {} is not in the plan (0..{})", id, plan_.jobs.size() - 1));
    if (state_.is_done(id)) return std::nullopt;
    const Job& job = plan_.jobs[static_cast<std::size_t>(id)];
    // The previous job's byte counts must not show as this one's.
    heartbeat_.set({{"job", id},
                    {"chunks_done", 0},
                    {"chunks_total", job.region.num_chunks()},
                    {"bytes_read", 0},
                    {"bytes_written", 0}});
    check_store();
    const JobStats stats = runner_.run(job, [&](const JobStats& s) {
      heartbeat_.update({{"chunks_done", s.chunks_written},
                         {"bytes_read", s.bytes_read},
                         {"bytes_written", s.bytes_written}});
      check_store_now_and_then();
      throw_if_terminated("the cache run was");
      if (on_chunk) on_chunk(s);
    });
    check_store();
    nlohmann::json done = job_stats_json(stats);
    done["worker"] = worker_id_;
    state_.mark_done(id, done);
    return stats;
  }

 private:
  // A worker of an old run (a lost coordinator's orphan, a queued array task) must not write into
  // a store that has since been replaced: the store's marker must be its plan's.
  void check_store() {
    last_check_ = now_seconds();
    if (plan_.store_id.empty()) return;
    const auto id = remote_ ? store_id_in(*store_) : store_id_of(plan_.store);
    if (id != plan_.store_id)
      throw Error::store(plan_.store, "is not the store this plan was made for (store id " +
                                          id.value_or("none") + ", plan's " + plan_.store_id +
                                          "); this worker's run was replaced, nothing written");
  }

  // Between chunks: on S3 the check is a request, so once every few seconds, not every chunk.
  void check_store_now_and_then() {
    if (!remote_ || now_seconds() - last_check_ >= kRemoteCheckSeconds) check_store();
  }

  // A worker on S3 without a local folder (SLURM, MPI, dask: its plan read from the store)
  // beats into the store, where the coordinator and `status` read it; its output is its log.
  static std::string files_root(const Plan& plan, const std::string& local_root) {
    if (backend_of(plan.store) != Backend::S3) return local_root.empty() ? plan.store : local_root;
    return local_root;
  }

  static constexpr double kRemoteCheckSeconds = 5.0;
  const Plan& plan_;
  std::unique_ptr<Writable> store_;
  StoreState state_;
  bool remote_;
  FileStore files_;  // logs and heartbeats
  StoreState files_state_;
  std::string worker_id_;
  double last_check_ = 0;
  bool checked_;  // before the heartbeat writes anything into the store
  ThreadPool pool_;
  JobRunner runner_;
  Heartbeat heartbeat_;
};

// This process's standard output and error go to the job's log (appended), as the coordinator's
// redirection did for the first job.
void redirect_output(const StoreState& state, int64_t job) {
  std::fflush(nullptr);
  int fd = -1;
  try {
    fd = state.open_log(job);
  } catch (const Error&) {
    return;  // a full disk: the previous log keeps the lines
  }
  ::dup2(fd, STDOUT_FILENO);
  ::dup2(fd, STDERR_FILENO);
  ::close(fd);
}

}  // namespace

void run_worker_jobs(const Plan& plan, const std::vector<int64_t>& ids, int threads,
                     const std::string& worker_id,
                     const std::function<void(const JobStats&)>& on_done,
                     const std::function<void(const JobStats&)>& on_chunk,
                     const std::string& local_root) {
  WorkerJobs worker(plan, threads, worker_id, local_root);
  for (const int64_t id : ids)
    if (const auto stats = worker.run(id, on_chunk); stats && on_done) on_done(*stats);
  worker.finish();
}

void serve_worker_jobs(const Plan& plan, int threads, const std::string& worker_id, int fd,
                       const std::string& local_root) {
  if (backend_of(plan.store) == Backend::S3 && local_root.empty())  // each job's log is a file
    throw Error::config("--jobs-from-fd", "a worker serving jobs to " + plan.store +
                                              " needs a local plan file (its logs go beside it)");
  WorkerJobs worker(plan, threads, worker_id, local_root);
  std::string inbox;
  bool first = true;
  for (;;) {
    std::size_t eol;
    while ((eol = inbox.find('\n')) == std::string::npos) {
      char buf[256];
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) {
        throw_if_terminated("the cache run was");
        continue;
      }
      if (n <= 0) {  // the coordinator has no more jobs (or is gone)
        worker.finish();
        return;
      }
      inbox.append(buf, static_cast<std::size_t>(n));
    }
    const std::string line = inbox.substr(0, eol);
    inbox.erase(0, eol + 1);
    int64_t id = -1;
    const auto [end, ec] = std::from_chars(line.data(), line.data() + line.size(), id);
    if (ec != std::errc() || end != line.data() + line.size())
      throw Error::internal("worker: not a job id from the coordinator: '" + line + "'");
    // Each job's lines go to its own log; the coordinator opened the first one.
    if (!first) redirect_output(worker.logs(), id);
    first = false;
    worker.run(id);
    const std::string reply = std::to_string(id) + "\n";
    if (::send(fd, reply.data(), reply.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(reply.size()))
      return;  // the coordinator is gone; it would redo the job from its marker anyway
  }
}

namespace {

// A job whose done marker appeared while it ran: another copy of it won.
struct Superseded {};

}  // namespace

void run_worker_queue(const Plan& plan, int threads, const std::string& worker_id,
                      const std::function<std::optional<int64_t>()>& next,
                      const std::string& local_root) {
  WorkerJobs worker(plan, threads, worker_id, local_root);
  while (const auto job = next()) {
    double last_look = now_seconds();
    try {
      worker.run(*job, [&](const JobStats&) {
        if (now_seconds() - last_look < 1.0) return;
        last_look = now_seconds();
        if (worker.is_done(*job)) throw Superseded{};
      });
    } catch (const Superseded&) {
      say(stderr, fmt::format("zarr-parallel: job {}: another copy finished it first; this one "
                              "stopped\n",
                              *job));
    }
    worker.idle();
  }
  worker.finish();
}

std::map<int64_t, int64_t> chunks_of_jobs(const Plan& plan, const std::vector<int64_t>& jobs) {
  std::map<int64_t, int64_t> out;
  for (const int64_t id : jobs)
    if (id >= 0 && static_cast<std::size_t>(id) < plan.jobs.size())
      out[id] = plan.jobs[static_cast<std::size_t>(id)].region.num_chunks();
  return out;
}

void report_heartbeat(Progress& progress, int64_t job, const nlohmann::json& beat) {
  // Heartbeats are untrusted store files: only numbers of the right kind are taken.
  const auto number = [&](const char* key) -> uint64_t {
    const auto it = beat.find(key);
    return it != beat.end() && it->is_number_unsigned() ? it->get<uint64_t>() : 0;
  };
  const auto it = beat.find("job");
  if (it == beat.end() || !it->is_number_integer() || it->get<int64_t>() != job) return;
  progress.job_progress(job, static_cast<int64_t>(number("chunks_done")), number("bytes_written"),
                        number("bytes_read"));
}

void run_series(const RunContext& ctx, const std::vector<int64_t>& jobs) {
  Progress progress(static_cast<int64_t>(jobs.size()), ctx.log_level);
  progress.set_job_chunks(chunks_of_jobs(ctx.plan, jobs));
  int64_t done = 0;
  uint64_t bytes = 0, read = 0;
  run_worker_jobs(
      ctx.plan, jobs, ctx.plan.threads_per_worker, "series",
      [&](const JobStats& s) {
        ++done;
        bytes += s.bytes_written;
        read += s.bytes_read;
        progress.job_finished(s.job_id, s.seconds);
        progress.update(done, bytes, 1, read);
      },
      [&](const JobStats& s) {
        progress.job_progress(s.job_id, s.chunks_written, s.bytes_written, s.bytes_read);
      });
  progress.finish();
}

}  // namespace zp
