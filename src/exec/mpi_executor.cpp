// deploy_mode: mpi. Every rank runs `zarr-parallel cache CONFIG`; rank 0 plans, writes metadata and
// coordinates, then hands out jobs one at a time to the ranks that ask (working itself when it is
// alone), at the end copies of slow jobs to idle ranks, and finishes the store once every job is
// done and every rank has stopped.
// The C API only: the deprecated C++ bindings would need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <fmt/format.h>
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include "core/console.hpp"
#include "core/error.hpp"
#include "core/plural.hpp"
#include "core/terminal_text.hpp"
#include "exec/cache_run.hpp"
#include "exec/executor.hpp"
#include "exec/heartbeat.hpp"
#include "exec/object_store_cache.hpp"
#include "exec/progress.hpp"
#include "plan/plan_json.hpp"
#include "store/secrets_channel.hpp"
#include "store/store_table.hpp"
#include "write/output_store.hpp"
#include "write/remote_plan.hpp"
#include "write/store_inventory.hpp"

namespace zp {

namespace {

enum Tag { kAsk = 1, kJob = 2 };
enum Status : int { kReady = 0, kHit = 1, kStopped = 2, kFailed = 3 };

struct MpiSession {
  MpiSession() { MPI_Init(nullptr, nullptr); }
  ~MpiSession() { MPI_Finalize(); }
};

void broadcast_string(std::string& s, int root) {
  int n = static_cast<int>(s.size());
  MPI_Bcast(&n, 1, MPI_INT, root, MPI_COMM_WORLD);
  s.resize(static_cast<std::size_t>(n));
  MPI_Bcast(s.data(), n, MPI_CHAR, root, MPI_COMM_WORLD);
}

// What a rank reports of its last job.
enum Result : int64_t { kJobFailed = 0, kJobDone = 1, kJobSuperseded = 2 };

// Rank 0's loop: answers each ask with the next job. Once none is left to start, a rank that asks
// is held until a running job gets a copy there (plan/copy_rule) or nothing is left to copy, and
// is then told -1 (no more). The first copy of a job to finish wins; the other stops at its next
// unit of chunks, when it sees the job's done marker. A message's payload is {last job, Result};
// the first ask carries {-1, kJobDone}.
class Dispatch {
 public:
  Dispatch(const Plan& plan, const std::vector<int64_t>& pending, int ranks, int log_level,
           const StoreState& state)
      : plan_(plan),
        queue_(pending.begin(), pending.end()),
        jobs_(pending.size()),
        working_(ranks - 1),
        log_level_(log_level),
        state_(state),
        progress_(static_cast<int64_t>(pending.size()), log_level) {}

  std::vector<int64_t> run();
  bool stopped_copies() const { return stopped_copies_; }

 private:
  struct Running {
    int64_t job = -1;
    bool copy = false;
    JobProgress progress;
  };
  void take_result(int rank, int64_t job, int64_t result);
  void job_done(int64_t job, const Running& r);
  bool answer(int rank);
  void give(int rank, int64_t job, bool copy);
  std::optional<int64_t> job_to_copy(double now) const;
  bool copy_may_come() const;
  double weight(int64_t job) const {
    const auto id = static_cast<std::size_t>(job);
    return job >= 0 && id < plan_.jobs.size() ? job_weight(plan_.jobs[id]) : 1.0;
  }

  const Plan& plan_;
  std::deque<int64_t> queue_;
  const std::size_t jobs_;
  int working_;
  const int log_level_;
  const StoreState& state_;
  Progress progress_;
  std::map<int, Running> running_;  // by rank
  std::set<int> held_;              // ranks that asked and wait for a copy or the end
  std::set<int64_t> done_, copied_;
  std::vector<double> durations_;  // seconds per job_weight of the jobs finished
  std::vector<int64_t> failed_;
  uint64_t written_ = 0, read_ = 0;
  bool stopped_copies_ = false;
  double last_copy_check_ = 0;
};

std::vector<int64_t> Dispatch::run() {
  while (working_ > 0) {
    int arrived = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, kAsk, MPI_COMM_WORLD, &arrived, &st);
    if (arrived) {
      int64_t msg[2];
      MPI_Recv(msg, 2, MPI_INT64_T, st.MPI_SOURCE, kAsk, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      take_result(st.MPI_SOURCE, msg[0], msg[1]);
      held_.insert(st.MPI_SOURCE);
    }
    for (auto it = held_.begin(); it != held_.end();) it = answer(*it) ? held_.erase(it) : ++it;
    // Polled, not a blocking receive: a held rank may get a copy while no message comes.
    if (!arrived) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  progress_.finish();
  return failed_;
}

void Dispatch::take_result(int rank, int64_t job, int64_t result) {
  const auto it = running_.find(rank);
  const Running r = it == running_.end() ? Running{} : it->second;
  running_.erase(rank);
  if (job < 0 || r.job != job) return;  // the first ask
  if (result == kJobDone) {
    job_done(job, r);
  } else if (result == kJobSuperseded) {
    stopped_copies_ = true;
  } else if (done_.count(job)) {
    stopped_copies_ = true;  // failed after the other copy won: its temporaries may be left
  } else if (std::any_of(running_.begin(), running_.end(),
                         [&](const auto& o) { return o.second.job == job; })) {
    log_line(log_level_, 1, fmt::format("job {}: a copy failed, the other goes on", job));
    stopped_copies_ = true;
  } else {
    failed_.push_back(job);
  }
}

void Dispatch::job_done(int64_t job, const Running& r) {
  if (!done_.insert(job).second) return;  // the other copy finished it first
  durations_.push_back((now_seconds() - r.progress.started) / weight(job));
  if (r.copy) log_line(log_level_, 1, fmt::format("job {}: the copy finished first", job));
  if (const auto info = state_.done_info(job)) {
    written_ += info->value("bytes_written", uint64_t{0});
    read_ += info->value("bytes_read", uint64_t{0});
  }
  progress_.update(static_cast<int64_t>(done_.size()), written_, static_cast<int>(running_.size()),
                   read_);
}

// Gives held `rank` a job or a copy, or tells it there is no more; false: it stays held.
bool Dispatch::answer(int rank) {
  if (failed_.empty() && !queue_.empty()) {
    give(rank, queue_.front(), false);
    queue_.pop_front();
    return true;
  }
  if (failed_.empty() && done_.size() < jobs_) {
    const double now = now_seconds();
    if (now - last_copy_check_ >= 0.25) {
      last_copy_check_ = now;
      if (const auto job = job_to_copy(now)) {
        give(rank, *job, true);
        return true;
      }
    }
    if (copy_may_come()) return false;
  }
  const int64_t none = -1;
  MPI_Send(&none, 1, MPI_INT64_T, rank, kJob, MPI_COMM_WORLD);
  --working_;
  return true;
}

void Dispatch::give(int rank, int64_t job, bool copy) {
  Running& r = running_[rank];
  r.job = job;
  r.copy = copy;
  const auto id = static_cast<std::size_t>(job);
  r.progress = {now_seconds(), 0, 0,
                id < plan_.jobs.size() ? plan_.jobs[id].region.num_chunks() : 0};
  if (copy) {
    copied_.insert(job);
    log_line(log_level_, 1,
             fmt::format("job {}: started a copy on rank {}, the first was slow", job, rank));
  }
  MPI_Send(&job, 1, MPI_INT64_T, rank, kJob, MPI_COMM_WORLD);
}

// The oldest running job, without a copy yet, that a copy started now would finish first; its
// progress from its rank's heartbeat.
std::optional<int64_t> Dispatch::job_to_copy(double now) const {
  if (speculative_copies_off() || durations_.size() < finished_before_copies(jobs_))
    return std::nullopt;
  std::vector<double> sorted = durations_;
  std::sort(sorted.begin(), sorted.end());
  const double per_weight = sorted[sorted.size() / 2];
  std::optional<int64_t> oldest;
  double oldest_start = 0;
  for (const auto& [rank, r] : running_) {
    if (r.copy || copied_.count(r.job) || done_.count(r.job)) continue;
    JobProgress p = r.progress;
    if (const auto hb = state_.heartbeat(fmt::format("mpi-rank-{}", rank)))
      progress_from_heartbeat(*hb, r.job, p);
    const double copy = per_weight * weight(r.job);
    if (!copy_pays(p.started, expected_finish(p, now, copy), now, copy)) continue;
    if (!oldest || p.started < oldest_start) {
      oldest = r.job;
      oldest_start = p.started;
    }
  }
  if (oldest && state_.is_done(*oldest)) return std::nullopt;  // its rank is about to report it
  return oldest;
}

// True while a running job could still get a copy: a held rank then waits instead of ending.
bool Dispatch::copy_may_come() const {
  if (speculative_copies_off()) return false;
  for (const auto& [rank, r] : running_)
    if (!r.copy && !copied_.count(r.job) && !done_.count(r.job)) return true;
  return false;
}

// A copy of a job that another rank finished first: thrown between units of chunks.
struct Superseded {};

// Runs `job` on this rank; kJobSuperseded when its done marker appeared meanwhile (another rank's
// copy won), looked for at most once a second.
Result run_job(const Plan& plan, const StoreState& state, int64_t job, int rank) {
  double last_look = now_seconds();
  try {
    run_worker_jobs(plan, {job}, plan.threads_per_worker, fmt::format("mpi-rank-{}", rank), {},
                    [&](const JobStats&) {
                      if (now_seconds() - last_look < 1.0) return;
                      last_look = now_seconds();
                      if (state.is_done(job)) throw Superseded{};
                    });
    return kJobDone;
  } catch (const Superseded&) {
    return kJobSuperseded;
  } catch (const std::exception& e) {
    say(stderr, fmt::format("zarr-parallel: rank {}: job {} failed: {}\n", rank, job,
                            terminal_safe(e.what())));
    return kJobFailed;
  }
}

void work(const Plan& plan, int rank) {
  const auto store = open_output_store(plan);  // a folder, or the prefix on S3
  const StoreState state(*store);
  int64_t msg[2] = {-1, kJobDone};
  for (;;) {
    MPI_Send(msg, 2, MPI_INT64_T, 0, kAsk, MPI_COMM_WORLD);
    int64_t job;
    MPI_Recv(&job, 1, MPI_INT64_T, 0, kJob, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (job < 0) return;
    msg[0] = job;
    msg[1] = run_job(plan, state, job, rank);
  }
}

// Rank 0 plans and prepares the store. A failure is held in `error` and reported once the
// other ranks know of it.
int begin_on_rank0(const Config& cfg, const CacheOptions& opt_in, CacheSession& session,
                   std::exception_ptr& error) {
  try {
    CacheOptions opt = opt_in;
    opt.ask = false;  // stdin belongs to mpirun
    opt.modes = {"mpi"};
    session = begin_cache(cfg, opt);
    return session.status == CacheSession::Status::Hit       ? kHit
           : session.status == CacheSession::Status::Stopped ? kStopped
                                                             : kReady;
  } catch (...) {
    error = std::current_exception();
    return kFailed;
  }
}

// Rank 0's error (`error`, on rank 0) as every rank has it after this: its kind and message.
Error shared_failure(const std::exception_ptr& error, int rank) {
  int kind = static_cast<int>(ErrorKind::Internal);
  std::string message;
  if (rank == 0) {
    try {
      std::rethrow_exception(error);
    } catch (const Error& e) {
      kind = e.exit_code();
      message = e.what();
    } catch (const std::exception& e) {
      message = e.what();
    }
  }
  MPI_Bcast(&kind, 1, MPI_INT, 0, MPI_COMM_WORLD);
  broadcast_string(message, 0);
  return Error(static_cast<ErrorKind>(kind), message);
}

// A rank other than 0 runs the jobs rank 0 hands it, from the plan file and the access rank 0
// sent.
void work_on_rank(const std::string& plan_path, const std::string& access,
                  const std::string& digest, int rank) {
  const AccessOptions handed = AccessOptions::from_transfer_text(access);
  // A store on S3: its plan read from the prefix, with the options rank 0 sent.
  Plan plan = is_remote_plan(plan_path) ? load_remote_plan(plan_path, digest, handed)
                                        : load_plan(plan_path, digest);
  plan.access = handed;
  guard_secrets(plan.access);
  work(plan, rank);
}

struct RanksResult {
  std::vector<int64_t> failed;
  bool stopped_copies = false;
};

// Rank 0 runs the jobs itself when it is alone, else hands them out.
RanksResult run_on_ranks(const Plan& plan, const std::vector<int64_t>& pending,
                         const StoreState& state, int log_level, int ranks) {
  if (ranks == 1) {
    run_worker_jobs(plan, pending, plan.threads_per_worker, "mpi-rank-0");
    return {};
  }
  Dispatch dispatch(plan, pending, ranks, log_level, state);
  RanksResult r;
  r.failed = dispatch.run();
  r.stopped_copies = dispatch.stopped_copies();
  return r;
}

void throw_if_failed(const std::vector<int64_t>& failed) {
  if (!failed.empty()) {
    std::string ids;
    for (auto id : failed) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
    throw Error(ErrorKind::Job,
                noun(static_cast<int64_t>(failed.size()), "job") + " " + ids +
                    " failed (see the ranks' messages above); run again with resume: true");
  }
}

// The jobs on the ranks, then rank 0 finishes the store.
void run_on_rank0(const Config& cfg, const CacheSession& session, int ranks) {
  FileStore store(session.build_root);
  const StoreState state(store);
  const RanksResult r = run_on_ranks(session.plan, session.pending, state, cfg.log_level, ranks);
  // Every rank is done: what a stopped copy left half written can go.
  if (r.stopped_copies) remove_stale_temporaries(session.build_root, session.plan);
  throw_if_failed(r.failed);
  finish_cache(cfg, session);
  print_open_hint(cfg.cache_store);
}

// Rank 0's word to the others, as they wait for it in run_cache_mpi: the status, then the plan
// file or URL, how the sources and the store are reached (secrets over MPI only), and the plan's
// SHA-256.
void tell_ranks(int status, std::string plan, std::string access, std::string digest) {
  MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
  broadcast_string(plan, 0);
  broadcast_string(access, 0);
  broadcast_string(digest, 0);
}

// Rank 0 of a run whose store is on S3: the object store coordinator (claim, lease, plan,
// metadata, completion) with the ranks as its executor; they read the plan from the prefix.
int rank0_on_object_store(const Config& cfg, const CacheOptions& opt, int ranks) {
  bool told = false;
  int code = 0;
  try {
    code = run_object_store_cache(cfg, opt, [&](const ObjectStoreJobs& j) {
      tell_ranks(kReady, j.plan_url, j.plan.access.transfer_text(), j.plan_sha256);
      told = true;
      throw_if_failed(run_on_ranks(j.plan, j.pending, j.state, cfg.log_level, ranks).failed);
    });
  } catch (...) {
    if (!told) {
      tell_ranks(kFailed, "", "", "");
      if (opt.every_rank_throws) shared_failure(std::current_exception(), 0);
    }
    throw;
  }
  if (!told) tell_ranks(kHit, "", "", "");
  return code;
}

}  // namespace

bool mpi_built() {
  return true;
}

int run_cache_mpi(const Config& cfg_in, const CacheOptions& opt_in) {
  MpiSession mpi;
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  Config cfg = cfg_in;
  cfg.simultaneous_worker_limit = std::max(1, ranks - 1);  // for planning: the ranks that work
  if (rank != 0) cfg.log_level = 0;
  if (rank == 0 && backend_of(cfg.cache_store) == Backend::S3)
    return rank0_on_object_store(cfg, opt_in, ranks);
  int status = kReady;
  std::exception_ptr error;
  CacheSession session;
  if (rank == 0) status = begin_on_rank0(cfg, opt_in, session, error);
  std::string plan_path = session.plan_path;
  MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
  broadcast_string(plan_path, 0);
  // How the sources are reached, secrets included, goes to the ranks over MPI: never a file or the
  // environment, and never what the store's plan.json says (others may write a store's folder).
  std::string access = status == kReady && rank == 0 ? session.plan.access.transfer_text() : "";
  broadcast_string(access, 0);
  // The plan file as rank 0 read it: a rank refuses one edited since.
  std::string digest = status == kReady && rank == 0 ? plan_file_sha256(plan_path) : "";
  broadcast_string(digest, 0);
  // A script on another rank must not go on as if the store were there.
  if (status == kFailed && opt_in.every_rank_throws) {
    const Error shared = shared_failure(error, rank);
    if (rank != 0) throw shared;
  }
  if (error) std::rethrow_exception(error);
  // Other ranks exit 0 when rank 0 failed: a non-zero exit would make mpirun kill rank 0 before it
  // prints the error; mpirun still returns rank 0's exit code.
  if (status == kFailed) return 0;
  if (status == kHit && rank == 0) print_open_hint(cfg.cache_store);
  if (status != kReady) return status == kStopped ? 3 : 0;
  if (rank != 0)
    work_on_rank(plan_path, access, digest, rank);
  else
    run_on_rank0(cfg, session, ranks);
  return 0;
}

}  // namespace zp
