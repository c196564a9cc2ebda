#include "exec/object_store_cache.hpp"

#include <fmt/format.h>

#include <thread>
#include <unordered_set>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/plural.hpp"
#include "core/thread_pool.hpp"
#include "exec/cache_decision.hpp"
#include "exec/object_store_slurm.hpp"
#include "exec/object_store_workers.hpp"
#include "exec/orphan_uploads.hpp"
#include "exec/progress.hpp"
#include "exec/resume_check.hpp"
#include "plan/plan_json.hpp"
#include "source/fingerprint.hpp"
#include "store/s3_writer.hpp"
#include "store/store_table.hpp"
#include "write/job_runner.hpp"
#include "write/lease_keeper.hpp"
#include "write/output_format.hpp"
#include "write/store_claim.hpp"
#include "write/store_inventory.hpp"
#include "write/store_lease.hpp"
#include "write/store_state.hpp"

namespace zp {

namespace {

bool same_config(const StoreState& state, const std::string& hash) {
  return state.completed_hash() == hash && state.completed_format_version() == kOutputFormatVersion;
}

// How the source differs from what the store recorded ("" when it does not), as for local stores.
std::string source_change(const StoreState& state, const Config& cfg) {
  const auto recorded = state.sources();
  if (!recorded || !recorded->is_array()) return "it has no record of its sources";
  const auto fingerprints = fingerprints_from(*recorded);
  const std::string change = source_difference(fingerprints, cfg);
  return change.empty() ? unversioned_sources(fingerprints, cfg) : change;
}

// A complete store of this config whose source changed: on_source_change says what happens.
// Append is not done on S3: the store is rebuilt, and the run says why.
void on_changed_source(const S3Writer& store, const Config& cfg, const std::string& change) {
  if (cfg.on_source_change == "error")
    throw Error::source(store.root(), "the source changed: " + change +
                                          " (on_source_change: error): the cache is left as it "
                                          "was made; set on_source_change: rebuild to update it");
  log_line(cfg.log_level, 1,
           store.root() + ": the source changed: " + change + "; rebuilding it" +
               (cfg.on_source_change == "append" ? " (append is not supported on S3)" : ""));
}

// An unfinished store of this config (same hash and format, plan intact) continues: its plan.
std::optional<Plan> resumable(const Writable& store, const StoreState& state,
                              const std::string& hash, const std::string& id, std::string& sha) {
  const auto s = state.started();
  if (!s || s->value("config_hash", "") != hash ||
      state.started_format_version() != kOutputFormatVersion)
    return std::nullopt;
  const auto text = store.get(std::string(StoreState::kFolder) + "/plan.json");
  if (!text || sha256_hex(*text) != s->value("plan_sha256", "")) return std::nullopt;
  Plan plan = plan_from_text(*text, store.location_of(".zarr-parallel/plan.json"));
  if (plan.store_id != id) return std::nullopt;
  sha = sha256_hex(*text);  // what this coordinator read: the digest its workers check
  return plan;
}

// The keys the old run's plan wrote that are in the store: a new plan may write fewer or other
// arrays and chunks, and skips all-fill chunks and shards, so an old one could outlive the
// rewrite with old values. Only keys of our plan, never anything else under the prefix.
std::vector<std::string> old_plan_keys(const S3Writer& store) {
  const std::string side = StoreState::kFolder;
  const auto text = store.get(side + "/plan.json");
  if (!text) return {};  // a run that never got as far as its plan wrote no data
  std::unordered_set<std::string> ours;
  try {
    ours = keys_written_by(plan_from_text(*text, store.location_of(side + "/plan.json")));
  } catch (const Error& e) {
    throw Error::store(store.root(), std::string("which of its objects zarr-parallel wrote is not "
                                                 "known (") +
                                         e.what() +
                                         "), so it deletes none: remove the store yourself to "
                                         "rebuild it");
  }
  std::vector<std::string> found;
  for (const auto& [key, size] : store.list_all(""))
    if (ours.count(key) && key.rfind(side + "/", 0) != 0) found.push_back(key);
  return found;
}

// What a reader could take for the old store goes first, then the old run's data objects (the
// old plan, which names them, last: a run killed on the way deletes them next time), then its
// records. Both formats' consolidated keys: a store switched from zarr_format 2 to 3 keeps no
// .zmetadata.
void clear_old_run(const S3Writer& store) {
  store.remove(".zmetadata");
  store.remove("zarr.json");
  const std::string side = StoreState::kFolder;
  store.remove(side + "/complete.json");
  store.remove(side + "/state.json");
  store.remove_many(old_plan_keys(store));
  for (const auto& name : store.list(side + "/jobs")) store.remove(side + "/jobs/" + name);
}

// `changed`: a complete store of this config whose source changed, replaced without overwrite.
void start_fresh(const S3Writer& store, const StoreState& state, const Config& cfg, Plan& plan,
                 bool changed, std::string& sha) {
  if (state.completed_hash() && !cfg.overwrite && !changed)
    throw Error::store(store.root(),
                       "exists (made from another config); set overwrite: true to "
                       "replace it");
  clear_old_run(store);
  const std::string plan_text = plan_to_json(plan).dump();
  sha = sha256_hex(plan_text);
  state.write_started(cfg.content_hash(), sha);
  state.write_sources(fingerprints_json(plan.sources));
  state.write_plan(plan_text);
}

// The metadata documents and coordinate arrays (small: in this process), then the jobs left.
std::vector<int64_t> write_start(const Writable& store, const StoreState& state, const Plan& plan,
                                 ThreadPool& pool) {
  write_metadata(plan, store);
  JobRunner runner(plan, store, pool);
  std::vector<int> coordinates;  // fetched together: one round trip behind a network
  for (std::size_t i = 0; i < plan.arrays.size(); ++i)
    if (plan.arrays[i].coordinate) coordinates.push_back(static_cast<int>(i));
  runner.run_whole_arrays(coordinates);
  std::vector<int64_t> pending;
  for (const Job& job : plan.jobs)
    if (!state.is_done(job.id)) pending.push_back(job.id);
  return pending;
}

// deploy_mode series: the jobs in this process, the lease checked around each one.
bool run_series_here(const Writable& store, const StoreState& state, const Plan& plan,
                     const std::vector<int64_t>& pending, ThreadPool& pool, const Config& cfg,
                     LeaseKeeper& keeper) {
  JobRunner runner(plan, store, pool);
  for (const int64_t id : pending) {
    keeper.check();  // a run that lost its lease writes no more
    const JobStats s = runner.run(plan.jobs[static_cast<std::size_t>(id)]);
    keeper.check();  // nor records a job into another run's state
    state.mark_done(id, {{"job", s.job_id},
                         {"chunks", s.chunks_written},
                         {"bytes_written", s.bytes_written},
                         {"seconds", s.seconds}});
    log_line(cfg.log_level, 2,
             fmt::format("job {} done ({})", id, counted(s.chunks_written, "chunk")));
  }
  return true;
}

// False when the jobs were only submitted (slurm, await_completion: false).
bool run_pending(const S3Writer& store, const StoreState& state, const Plan& plan,
                 const Config& cfg, LeaseKeeper& keeper, const ObjectStoreExecutor& exec,
                 const std::string& plan_sha256) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // An earlier run's, killed mid-upload; not in slurm, mpi or dask runs, where an earlier
  // submission's tasks may still be uploading (this run follows them).
  if (cfg.deploy_mode == "series" || cfg.deploy_mode == "local")
    abort_orphan_uploads(store, plan, cfg.log_level);
  std::vector<int64_t> pending;
  {
    ThreadPool pool(cfg.threads_per_worker > 0 ? cfg.threads_per_worker : cores);
    pending = write_start(store, state, plan, pool);
    if (cfg.deploy_mode == "series")
      return run_series_here(store, state, plan, pending, pool, cfg, keeper);
  }
  keeper.check();
  const ObjectStoreJobs jobs{store,
                             state,
                             plan,
                             pending,
                             store.location_of(std::string(StoreState::kFolder) + "/plan.json"),
                             plan_sha256};
  if (exec) {
    exec(jobs);
    return true;
  }
  if (cfg.deploy_mode == "slurm") return run_slurm_on_object_store(jobs, cfg);
  // Workers write; the lease stays here, and a lost one stops them at once.
  run_local_on_object_store(state, plan, pending, cfg, store,
                            [&keeper] { keeper.throw_if_lost(); });
  return true;
}

Plan fresh_plan(const Config& cfg, const Writable& store, const std::string& id) {
  Prepared prep = prepare(cfg);
  Plan plan = std::move(prep.plan);
  plan.access.store = cfg.cache_options;  // for workers that open the store themselves
  plan.access.store_given = true;
  plan.store = store.root();
  plan.store_id = id;
  SourceAccess access(plan.access);
  plan.sources = take_fingerprints(source_objects(prep.dataset), access);
  return plan;
}

// The plan of this run: the unfinished run's (same config, unchanged sources), or a fresh one.
// A resumed plan must read exactly the files a fresh plan reads: the store is untrusted, and an
// edited plan.json (its digest in state.json rewritten too) must not read a file of the user's.
Plan plan_of_run(const Config& cfg, const S3Writer& store, const StoreState& state,
                 const std::string& id, bool changed, std::string& sha) {
  Plan fresh = fresh_plan(cfg, store, id);
  if (!changed && !state.completed_hash() && source_change(state, cfg).empty())
    if (auto resumed = resumable(store, state, cfg.content_hash(), id, sha)) {
      Plan plan = std::move(*resumed);
      check_same_files(store.root(), plan, fresh);
      AccessOptions access = cfg.access;  // this run's secrets, the plan's reading of the source
      access.chunks_remote_role = plan.access.chunks_remote_role;
      access.store = cfg.cache_options;
      access.store_given = true;
      plan.access = access;
      check_resumable(store.root(), plan);
      log_line(cfg.log_level, 1, "resuming " + store.root());
      return plan;
    }
  start_fresh(store, state, cfg, fresh, changed, sha);
  return fresh;
}

}  // namespace

int run_object_store_cache(const Config& cfg, const CacheOptions& opt,
                           const ObjectStoreExecutor& exec) {
  (void)opt;
  if (!exec && cfg.deploy_mode != "series" && cfg.deploy_mode != "local" &&
      cfg.deploy_mode != "slurm")
    throw Error::config("deploy_mode", kObjectStoreModes);
  const S3Writer store(cfg.cache_store, cfg.cache_options);
  const StoreState state(store);
  const std::string hash = cfg.content_hash();
  const std::string id = claim_store(store);  // a foreign prefix is refused here
  bool changed = false;
  if (same_config(state, hash)) {
    const std::string change = source_change(state, cfg);
    if (change.empty()) {
      emit_event("cache_hit", {{"store", store.root()}});
      log_line(cfg.log_level, 1, "cache hit: " + store.root());
      return 0;
    }
    on_changed_source(store, cfg, change);
    changed = true;
  }
  if (!store.conditional_puts_honoured())
    log_line(cfg.log_level, 1,
             "note: " + store.root() +
                 ": the server ignores If-None-Match or If-Match, so the store's lease "
                 "cannot keep a second run out: run one at a time");
  // The lease on its own connection: requests on one writer take turns, and a renewal must not
  // wait behind a long upload.
  const S3Writer lease_store(cfg.cache_store, cfg.cache_options);
  auto lease = StoreLease::acquire(lease_store, StoreLease::configured_seconds());
  LeaseKeeper keeper(*lease);  // renewed from now on, planning included
  std::string plan_sha256;
  Plan plan = plan_of_run(cfg, store, state, id, changed, plan_sha256);
  if (!run_pending(store, state, plan, cfg, keeper, exec, plan_sha256))
    return 0;  // submitted only: a run with resume: true finishes the store
  keeper.check();
  abort_orphan_uploads(store, plan, cfg.log_level);  // no worker runs now: any left is an orphan
  write_consolidated(plan, store);                   // last but the completion marker
  keeper.check();
  state.mark_complete(hash);
  emit_event("complete", {{"store", store.root()}});
  log_line(cfg.log_level, 1, "done: " + store.root());
  return 0;
}

}  // namespace zp
