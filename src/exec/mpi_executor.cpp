// deploy_mode: mpi. Every rank runs `zarr-parallel cache CONFIG`; rank 0 plans, writes metadata and
// coordinates, then hands out jobs one at a time to the ranks that ask (working itself when it is
// alone), and finishes the store once every job is done.
// The C API only: the deprecated C++ bindings would need libmpi_cxx.
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <fmt/format.h>
#include <mpi.h>

#include <deque>

#include "core/console.hpp"
#include "core/error.hpp"
#include "core/plural.hpp"
#include "exec/cache_run.hpp"
#include "exec/executor.hpp"
#include "exec/progress.hpp"
#include "plan/plan_json.hpp"
#include "store/secrets_channel.hpp"

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

// Rank 0's loop: answer each ask with the next job, or -1 when none is left. A message's payload
// is {last job, 1 if it succeeded}; the first ask carries {-1, 1}.
std::vector<int64_t> dispatch(const std::vector<int64_t>& pending, int ranks, int log_level,
                              const StoreState& state) {
  std::deque<int64_t> queue(pending.begin(), pending.end());
  std::vector<int64_t> failed;
  Progress progress(static_cast<int64_t>(pending.size()), log_level);
  int64_t done = 0;
  uint64_t written = 0, read = 0;
  int working = ranks - 1;
  while (working > 0) {
    int64_t msg[2];
    MPI_Status st;
    MPI_Recv(msg, 2, MPI_INT64_T, MPI_ANY_SOURCE, kAsk, MPI_COMM_WORLD, &st);
    if (msg[0] >= 0) {
      if (msg[1]) {
        ++done;
        if (const auto info = state.done_info(msg[0])) {
          written += info->value("bytes_written", uint64_t{0});
          read += info->value("bytes_read", uint64_t{0});
        }
      } else {
        failed.push_back(msg[0]);
      }
      progress.update(done, written, working, read);
    }
    int64_t next = -1;
    if (!queue.empty() && failed.empty()) {
      next = queue.front();
      queue.pop_front();
    }
    if (next < 0) --working;
    MPI_Send(&next, 1, MPI_INT64_T, st.MPI_SOURCE, kJob, MPI_COMM_WORLD);
  }
  progress.finish();
  return failed;
}

void work(const Plan& plan, int rank) {
  int64_t msg[2] = {-1, 1};
  for (;;) {
    MPI_Send(msg, 2, MPI_INT64_T, 0, kAsk, MPI_COMM_WORLD);
    int64_t job;
    MPI_Recv(&job, 1, MPI_INT64_T, 0, kJob, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (job < 0) return;
    msg[0] = job;
    try {
      run_worker_jobs(plan, {job}, plan.threads_per_worker, fmt::format("mpi-rank-{}", rank));
      msg[1] = 1;
    } catch (const std::exception& e) {
      say(stderr, fmt::format("zarr-parallel: rank {}: job {} failed: {}\n", rank, job, e.what()));
      msg[1] = 0;
    }
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

// A rank other than 0 runs the jobs rank 0 hands it, from the plan file and the access rank 0
// sent.
void work_on_rank(const std::string& plan_path, const std::string& access, int rank) {
  Plan plan = load_plan(plan_path);
  plan.access = AccessOptions::from_transfer_text(access);
  guard_secrets(plan.access);
  work(plan, rank);
}

// Rank 0 runs the jobs itself when it is alone, else hands them out; then finishes the store.
void run_on_rank0(const Config& cfg, const CacheSession& session, int ranks) {
  std::vector<int64_t> failed;
  if (ranks == 1) {
    run_worker_jobs(session.plan, session.pending, session.plan.threads_per_worker, "mpi-rank-0");
  } else {
    FileStore store(session.build_root);
    failed = dispatch(session.pending, ranks, cfg.log_level, StoreState(store));
  }
  if (!failed.empty()) {
    std::string ids;
    for (auto id : failed) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
    throw Error(ErrorKind::Job,
                noun(static_cast<int64_t>(failed.size()), "job") + " " + ids +
                    " failed (see the ranks' messages above); run again with resume: true");
  }
  finish_cache(cfg, session);
  print_open_hint(cfg.cache_store);
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
  if (error) std::rethrow_exception(error);
  // Other ranks exit 0 when rank 0 failed: a non-zero exit would make mpirun kill rank 0 before it
  // prints the error; mpirun still returns rank 0's exit code.
  if (status == kFailed) return 0;
  if (status == kHit && rank == 0) print_open_hint(cfg.cache_store);
  if (status != kReady) return status == kStopped ? 3 : 0;
  if (rank != 0)
    work_on_rank(plan_path, access, rank);
  else
    run_on_rank0(cfg, session, ranks);
  return 0;
}

}  // namespace zp
