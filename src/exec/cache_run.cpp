#include "exec/cache_run.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "core/console.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/plural.hpp"
#include "core/terminal_text.hpp"
#include "core/units.hpp"
#include "exec/append_run.hpp"
#include "exec/cache_decision.hpp"
#include "exec/executor.hpp"
#include "exec/object_store_cache.hpp"
#include "exec/progress.hpp"
#include "exec/resume_check.hpp"
#include "exec/termination.hpp"
#include "plan/plan_json.hpp"
#include "plan/planner.hpp"
#include "plan/recommend.hpp"
#include "source/fingerprint.hpp"
#include "source/open_source.hpp"
#include "source/scan_cache.hpp"
#include "store/file_store.hpp"
#include "store/path_lock.hpp"
#include "store/secrets_channel.hpp"
#include "store/store_table.hpp"
#include "write/output_format.hpp"
#include "write/store_inventory.hpp"
#include "write/store_ownership.hpp"

namespace zp {

namespace fs = std::filesystem;
using json = nlohmann::json;

Prepared prepare(const Config& cfg, std::vector<Fingerprint>* fingerprints) {
  Prepared p{cfg, {}, {}, {}, {}, {}};
  set_scan_cache_log_level(cfg.log_level);
  p.dataset = open_source(cfg.data_uri, cfg.engine, cfg.concat_dim, cfg.group, cfg.access,
                          cfg.filter_by_keys);
  p.dataset.access.hide_secrets_of_files(p.dataset.files);  // signed chunk URLs: never on disk
  std::future<std::vector<Fingerprint>> taken;  // joined before this returns (or unwinds)
  if (fingerprints)
    taken = std::async(std::launch::async,
                       [objects = source_objects(p.dataset), access = p.dataset.access] {
                         SourceAccess own(access);
                         return take_fingerprints(objects, own);
                       });
  p.coordinates = load_coordinates(p.dataset, fingerprints ? &p.kept : nullptr);
  p.selection = apply_preprocessors(p.dataset, p.coordinates, cfg.preprocessors);
  p.coordinates = with_labels(std::move(p.coordinates), p.selection);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const PlanOptions opt = plan_options(cfg, cores);
  p.plan = make_plan(p.dataset, p.selection, cfg, opt);
  p.plan.recommendations = recommend(p.dataset, p.coordinates, p.selection, cfg, opt, p.plan);
  for (const auto& [key, message] : p.selection.notes) p.plan.notes.push_back({key, message});
  if (fingerprints) *fingerprints = taken.get();
  return p;
}

std::string describe_plan(const Plan& plan, std::size_t max_jobs) {
  const auto& s = plan.summary;
  std::string out = fmt::format(
      "store            {}\n"
      "arrays           ",
      plan.store);
  for (const auto& a : plan.arrays) {
    out += fmt::format("{}{}(", a.name, a.coordinate ? "[coord]" : "");
    for (std::size_t d = 0; d < a.ndim(); ++d)
      out += fmt::format("{}{}={}/{}", d ? ", " : "", a.dims[d], a.shape[d], a.chunks[d]);
    out += fmt::format(") {}  ", a.conversion.out.str());
  }
  out += fmt::format(
      "\njobs             {} on {} x {}\n"
      "output           {} in {}\n"
      "source chunks    {} needed, {} stored\n"
      "read             {} (read amplification {:.2f})\n"
      "peak memory      {} per worker (limit {})\n",
      plan.jobs.size(), counted(plan.workers, "worker"), counted(plan.threads_per_worker, "thread"),
      format_bytes(static_cast<double>(s.output_bytes)), counted(s.output_chunks, "chunk"),
      s.source_chunks, format_bytes(static_cast<double>(s.needed_bytes)),
      format_bytes(static_cast<double>(s.read_bytes)), s.read_amplification,
      format_bytes(static_cast<double>(s.peak_memory)),
      format_bytes(static_cast<double>(plan.memory_limit)));
  for (std::size_t i = 0; i < plan.jobs.size() && i < max_jobs; ++i) {
    const Job& j = plan.jobs[i];
    const ArrayPlan& a = plan.arrays[static_cast<std::size_t>(j.array)];
    std::string region;
    for (std::size_t d = 0; d < a.ndim(); ++d) {
      const int64_t lo = j.region.lo[d] * a.chunks[d],
                    hi = std::min(j.region.hi[d] * a.chunks[d], a.shape[d]);
      region += fmt::format("{}{}[{}:{}]", d ? ", " : "", a.dims[d], lo, hi);
    }
    out += fmt::format("  job {:>4}  {}  {}  {}, {}, reads {}\n", j.id, a.name, region,
                       counted(j.region.num_chunks(), "output chunk"),
                       counted(static_cast<int64_t>(j.source_chunks.size()), "source chunk"),
                       format_bytes(static_cast<double>(j.read_bytes)));
  }
  if (plan.jobs.size() > max_jobs)
    out += fmt::format("  ... {} more (plan --json lists all)\n",
                       counted(static_cast<int64_t>(plan.jobs.size() - max_jobs), "job"));
  if (plan.recommendations.empty()) {
    out += "recommendations  none: selection and chunks align with the source chunks\n";
  } else {
    out += "recommendations:\n";
    for (const auto& r : plan.recommendations) out += fmt::format("  - {}: {}\n", r.key, r.message);
  }
  for (const auto& n : plan.notes) out += fmt::format("note  {}: {}\n", n.key, n.message);
  return out;
}

namespace {

bool ask_to_continue(const Plan& plan) {
  say(stderr, "Recommendations:\n");
  for (const auto& r : plan.recommendations)
    if (r.saves) say(stderr, terminal_safe(fmt::format("  - {}: {}\n", r.key, r.message)));
  if (!(isatty(STDIN_FILENO) && isatty(STDERR_FILENO))) {
    say(stderr,
        "zarr-parallel: stopped on recommendations (exit 3). Change the config, or run again with "
        "--yes or recommend_changes: false to proceed as planned.\n");
    return false;
  }
  say(stderr, "Continue without recommendations? (y/n) ");
  std::string answer;
  std::getline(std::cin, answer);
  return !answer.empty() && (answer[0] == 'y' || answer[0] == 'Y');
}

// Recommendations become `recommendation` events; advice that saves nothing is printed and the
// run goes on. Only advice that saves reads or memory stops (exit 3) or asks, with
// recommend_changes and without --yes.
bool stops_on_recommendations(const Plan& plan, const Config& cfg, const CacheOptions& opt) {
  bool saving = false;
  for (const auto& r : plan.recommendations) {
    emit_event("recommendation", {{"key", r.key}, {"message", r.message}, {"saves", r.saves}});
    saving |= r.saves;
    if (!r.saves)
      log_line(cfg.log_level, 1,
               "recommendation (saves no reads or memory for the same output; going on): " + r.key +
                   ": " + r.message);
  }
  if (!saving || !cfg.recommend_changes || opt.yes || (opt.ask && ask_to_continue(plan)))
    return false;
  emit_event("stopped", {{"reason", "recommendations"}, {"exit_code", 3}});
  return true;
}

json stats_json(const Plan& plan, const StoreState& state, double wall) {
  json jobs = json::array();
  uint64_t read = 0, written = 0, peak = 0;
  for (const auto& j : state.done_records(plan.jobs.size())) {
    jobs.push_back(j);
    read += j.value("bytes_read", uint64_t{0});
    written += j.value("bytes_written", uint64_t{0});
    peak = std::max<uint64_t>(peak, j.value("peak_rss", uint64_t{0}));
  }
  const double needed = static_cast<double>(plan.summary.needed_bytes);
  return {{"wall_seconds", wall},
          {"jobs", plan.jobs.size()},
          {"bytes_read", read},
          {"bytes_written", written},
          {"bytes_needed", plan.summary.needed_bytes},
          {"read_amplification", needed > 0 ? static_cast<double>(read) / needed : 1.0},
          {"predicted_read_amplification", plan.summary.read_amplification},
          {"peak_rss_per_worker", peak},
          {"predicted_peak_memory_per_worker", plan.summary.peak_memory},
          {"per_job", jobs}};
}

}  // namespace

void print_open_hint(const std::string& store) {
  if (json_events()) return;  // stdout is the event stream; "complete" names the store
  say(stdout, fmt::format("{}\nimport xarray as xr\nds = xr.open_zarr(\"{}\")\n", store, store));
}

namespace {

// The coordinator's store locks, by target path. A Python session runs begin, the executor and
// finish in separate calls; the lock is held in between.
std::mutex g_locks_mutex;
std::map<std::string, std::unique_ptr<PathLock>> g_locks;

void hold_lock(const std::string& target, int log_level) {
  std::lock_guard guard(g_locks_mutex);
  if (g_locks.count(target)) return;
  auto lock = PathLock::acquire(target);
  if (!lock->unlocked().empty())
    log_line(log_level, 1,
             "note: " + lock->lock_file() + ": this file system has no file locks (" +
                 lock->unlocked() +
                 "); a second run on this store from another host at the same time would not be "
                 "refused");
  g_locks[target] = std::move(lock);
}

std::optional<std::string> started_hash(const std::string& root) {
  FileStore store(root);
  const auto s = StoreState(store).started();
  if (!s || !s->contains("config_hash") || !(*s)["config_hash"].is_string()) return std::nullopt;
  return (*s)["config_hash"].get<std::string>();
}

}  // namespace

namespace {

// Step 2: read the source and plan (reads only), then refuse any overlap with the source.
void plan_session(const Config& cfg, const std::string& staging, CacheSession& session) {
  std::vector<Fingerprint> taken;
  Prepared prep = prepare(cfg, &taken);
  const std::vector<Fingerprint> sources = source_objects(prep.dataset);
  std::vector<std::string> roots;  // local ones: a remote source cannot overlap a local store
  for (const auto& s : sources)
    if (!is_remote(s.path)) roots.push_back(local_path_of(s.path));
  if (prep.dataset.engine == "zarr" && !is_remote(prep.dataset.uri))
    roots.push_back(local_path_of(prep.dataset.uri));
  check_not_source(session.target, roots);
  check_not_source(staging, roots, "the staging store " + staging);
  session.plan = std::move(prep.plan);
  session.plan.sources = std::move(taken);
  session.kept = std::move(prep.kept);
  for (const auto& n : session.plan.notes)
    log_line(cfg.log_level, 1, "note: " + n.key + ": " + n.message);
}

// Why the stored plan's jobs cannot run within this config's memory_limit ("" when they can):
// they were sized for the limit they were planned with (SLURM's --mem would kill them job by job).
std::string memory_shortfall(const Config& cfg, const std::string& root, const Plan& plan) {
  if (cfg.memory_limit >= plan.memory_limit ||
      plan.summary.peak_memory <= static_cast<uint64_t>(cfg.memory_limit))
    return "";
  return fmt::format(
      "the unfinished cache at {} was planned with memory_limit {} and its jobs need up to {} "
      "per worker, more than {}",
      root, format_bytes(static_cast<double>(plan.memory_limit)),
      format_bytes(static_cast<double>(plan.summary.peak_memory)),
      format_bytes(static_cast<double>(cfg.memory_limit)));
}

// Continues the store at `root` with the jobs as first planned (done markers still match). What
// they read and how it is reached are this config's, not the store's: a store folder is untrusted.
// False (the plan untouched) when an automatic continuation cannot fit the memory limit.
bool resume_into(const std::string& root, const Config& cfg, bool asked, CacheSession& session) {
  Plan& plan = session.plan;
  FileStore store(root);
  StoreState state(store);
  std::string digest;
  Plan stored = load_store_plan(state.plan_path(), "", &digest);
  check_same_files(root, stored, plan);
  stored.access = plan.access;
  check_resumable(root, stored);
  if (stored.store_id != store_id_of(root).value_or(""))
    throw Error::store(root,
                       "its plan belongs to another store (copied over?); run "
                       "again with resume: false to rebuild it");
  if (const std::string short_of = memory_shortfall(cfg, root, stored); !short_of.empty()) {
    if (!asked) {
      log_line(cfg.log_level, 1, "rebuild: " + short_of + ": planning it again");
      return false;
    }
    throw Error::config(
        "memory_limit",
        short_of + fmt::format(": resume with memory_limit {} or more, or plan it "
                               "again with resume: false and overwrite: true",
                               format_bytes(static_cast<double>(stored.memory_limit))));
  }
  plan = std::move(stored);
  plan.store = root;
  session.plan_sha256 = digest;
  remove_stale_temporaries(root, plan);
  log_line(cfg.log_level, 1, "resuming " + root);
  return true;
}

// A new store, or a replacement built beside the old one (which stays whole until it is done).
void start_fresh(const Config& cfg, const TargetState& t, const TargetState& st,
                 CacheSession& session) {
  const std::string& target = session.target;
  const std::string staging = staging_path_for(target);
  const std::string hash = cfg.content_hash();
  Plan& plan = session.plan;
  if (t.kind == TargetKind::Ours) {
    if (!cfg.overwrite)
      throw Error::store(target, started_hash(target) == hash
                                     ? "an unfinished cache of this config is here: set "
                                       "resume: true to finish it, or overwrite: true to "
                                       "start again"
                                     : "exists (made from another config); set overwrite: "
                                       "true to replace it");
    // Before any work: a replacement ends by deleting the old store.
    check_all_ours(target, "replacing it would delete them");
    session.build_root = staging;
  } else {
    session.build_root = target;
  }
  if (st.kind == TargetKind::Ours) remove_our_store(staging);  // an abandoned replacement
  const std::string retired = retired_path_for(target);        // a swap interrupted midway
  if (classify_target(retired).kind == TargetKind::Ours) remove_our_store(retired);
  plan.store_id = create_store(session.build_root);
  plan.store = session.build_root;
  FileStore store(session.build_root);
  StoreState state(store);
  // The plan's digest beside the config hash: a resume, a worker or `status` refuses a plan
  // that was damaged or edited since (one that still parses would complete a wrong store).
  const std::string plan_text = plan_to_json(plan).dump();
  session.plan_sha256 = sha256_hex(plan_text);  // what this run's workers must load
  // The three flushed together (one wait on the device, not three in turn), durable before any job.
  const auto batch = store.batch();
  state.write_started(hash, session.plan_sha256, batch.get());
  state.write_sources(fingerprints_json(plan.sources), batch.get());
  state.write_plan(plan_text, batch.get());
  batch->finish();  // the files, then the side folder's entries
}

// Which interrupted store an explicit `resume: true` continues ("" none).
std::string asked_resume_root(const Config& cfg, const std::string& target,
                              const std::string& staging, const TargetState& t,
                              const TargetState& st) {
  const std::string hash = cfg.content_hash();
  if (t.kind == TargetKind::Ours && started_hash(target) == hash &&
      !StoreState(FileStore(target)).completed_hash())
    return target;
  if (st.kind == TargetKind::Ours && started_hash(staging) == hash) return staging;
  return "";
}

// Step 3, under the lock: decide again (another run may have changed things while we planned),
// then continue the interrupted store or start a fresh one. False: a hit after all.
bool settle_store(const Config& cfg, CacheSession& session) {
  const std::string& target = session.target;
  const std::string staging = staging_path_for(target);
  const TargetState t = classify_target(target);
  const TargetState st = classify_target(staging);
  if (t.kind == TargetKind::Foreign)
    throw Error::store(target, t.why + "; zarr-parallel writes only into stores it created");
  if (st.kind == TargetKind::Foreign)
    throw Error::store(
        staging, st.why + "; it is where a replacement of " + target + " is built: move it away");
  Decision now = decide(target, staging, cfg);
  AppendShape shape;
  const bool grew = now.kind == Decision::Kind::Append;
  if (grew) now = confirm_append(cfg, session, now, shape);
  if (now.kind != session.decision.kind || now.root != session.decision.root)
    announce(now, cfg.log_level);  // changed while this run planned
  session.decision = now;
  if (now.kind == Decision::Kind::Hit && grew) record_sources(session);  // nothing new selected
  if (now.kind == Decision::Kind::Hit) return false;
  if (now.kind == Decision::Kind::Append) {
    start_append(cfg, shape, session);
    return true;
  }
  std::string root = cfg.resume ? asked_resume_root(cfg, target, staging, t, st) : "";
  if (root.empty() && now.kind == Decision::Kind::Continue) root = now.root;
  if (!root.empty() && resume_into(root, cfg, cfg.resume, session)) {
    session.build_root = root;
    return true;
  }
  start_fresh(cfg, t, st, session);
  return true;
}

// The metadata documents and coordinate arrays (small, rewritten by every run), and the jobs left.
void write_start(CacheSession& session) {
  const Plan& plan = session.plan;
  FileStore store(session.build_root);
  StoreState state(store);
  // An append replaces the arrays' metadata after its chunks (finish_cache): readers meanwhile
  // see the old dataset.
  if (plan.append_dim.empty()) write_metadata(plan, store);
  {
    ThreadPool pool(1);
    JobRunner runner(plan, store, pool);
    std::vector<int> coordinates;  // fetched together: one round trip behind a network
    for (std::size_t i = 0; i < plan.arrays.size(); ++i)
      if (plan.arrays[i].coordinate) coordinates.push_back(static_cast<int>(i));
    runner.run_whole_arrays(coordinates, &session.kept);
  }
  session.kept.clear();
  for (const auto& j : plan.jobs)
    if (!state.is_done(j.id)) session.pending.push_back(j.id);
  session.plan_path = state.plan_path();
}

void announce_plan(const Config& cfg, const CacheSession& session) {
  const Plan& plan = session.plan;
  nlohmann::json fields = decision_fields(session.decision);
  fields.update({{"store", session.target},
                 {"jobs_total", plan.jobs.size()},
                 {"jobs_pending", session.pending.size()},
                 {"deploy_mode", cfg.deploy_mode},
                 {"read_amplification", plan.summary.read_amplification},
                 {"peak_memory_per_worker", plan.summary.peak_memory},
                 {"output_bytes", plan.summary.output_bytes}});
  emit_event("plan", fields);
  log_line(cfg.log_level, 1,
           fmt::format("{} to run ({} already done), {} mode, read amplification {:.2f}, "
                       "predicted peak {} per worker{}",
                       counted(static_cast<int64_t>(session.pending.size()), "job"),
                       plan.jobs.size() - session.pending.size(), cfg.deploy_mode,
                       plan.summary.read_amplification,
                       format_bytes(static_cast<double>(plan.summary.peak_memory)),
                       session.build_root == session.target
                           ? ""
                           : "; building the replacement in " + session.build_root));
}

}  // namespace

namespace {

void check_mode_runs_here(const Config& cfg, const CacheOptions& opt) {
  if (std::find(opt.modes.begin(), opt.modes.end(), cfg.deploy_mode) == opt.modes.end())
    throw Error::config(
        "deploy_mode",
        "'" + cfg.deploy_mode + "' cannot run from here: the CLI runs series, local, " +
            "slurm and (under mpirun) mpi; dask_distributed runs from the Python module");
}

}  // namespace

CacheSession begin_cache(const Config& cfg, const CacheOptions& opt) {
  if (backend_of(cfg.cache_store) == Backend::S3)  // run_cache's own path, series and local
    throw Error::config(
        cfg.deploy_mode == "series" || cfg.deploy_mode == "local" ? "cache_store" : "deploy_mode",
        kObjectStoreModes);
  CacheSession session;
  session.started = now_seconds();
  const std::string target = canonical_path(cfg.cache_store);
  const std::string staging = staging_path_for(target);
  session.target = target;

  // 1. Whose is the path? Nothing is created anywhere before this answer. Then what this run
  // does with what is there (hit, continue, rebuild), said first.
  const TargetState first = classify_target(target);
  if (first.kind == TargetKind::Foreign && !first.being_created)
    throw Error::store(target, first.why +
                                   "; zarr-parallel writes only into stores it created "
                                   "(choose another cache_store)");
  session.decision = decide(target, staging, cfg);
  const bool grew = session.decision.kind == Decision::Kind::Append;
  if (!grew) announce(session.decision, cfg.log_level);  // an append once the plan confirms it
  if (session.decision.kind == Decision::Kind::Hit) {
    nlohmann::json hit = decision_fields(session.decision);
    hit["store"] = target;
    emit_event("cache_hit", hit);
    session.status = CacheSession::Status::Hit;
    return session;
  }
  check_mode_runs_here(cfg, opt);

  plan_session(cfg, staging, session);  // 2.
  if (grew) {
    AppendShape shape;
    session.decision = confirm_append(cfg, session, session.decision, shape);
    announce(session.decision, cfg.log_level);
  }
  const Plan& plan = session.plan;
  if (stops_on_recommendations(plan, cfg, opt)) {
    session.status = CacheSession::Status::Stopped;
    return session;
  }

  hold_lock(target, cfg.log_level);  // 3.
  try {
    if (!settle_store(cfg, session)) {
      release_cache_lock(target);
      session.status = CacheSession::Status::Hit;
      return session;
    }
    write_start(session);
  } catch (...) {
    release_cache_lock(target);
    throw;
  }
  session.status = CacheSession::Status::Ready;
  announce_plan(cfg, session);
  return session;
}

void release_cache_lock(const std::string& target) {
  std::lock_guard guard(g_locks_mutex);
  g_locks.erase(target);
}

void finish_cache(const Config& cfg, const CacheSession& session) {
  const std::string target =
      session.target.empty() ? canonical_path(cfg.cache_store) : session.target;
  const std::string root =
      session.build_root.empty() ? store_root_of_plan(session.plan_path) : session.build_root;
  try {
    FileStore store(root);
    StoreState state(store);
    const Plan& plan = session.plan;
    for (const auto& j : plan.jobs)
      if (!state.is_done(j.id))
        throw Error(ErrorKind::Job,
                    fmt::format("job {} has no done marker; run again with resume: true", j.id));
    const bool append = !plan.append_dim.empty();
    // .zmetadata and the stats flushed together, both durable before the completion marker.
    const auto batch = store.batch();
    if (!append) write_consolidated(plan, *batch);
    if (cfg.generate_stats)
      state.write_stats(stats_json(plan, state, now_seconds() - session.started), batch.get());
    batch->finish();
    if (append)
      finish_append(cfg, plan, target);  // metadata, sources, completion, in that order
    else
      state.mark_complete(cfg.content_hash());
    if (root != target) {
      swap_in(root, target);
      log_line(cfg.log_level, 1, "replaced the old store at " + target);
    }
    if (cfg.generate_stats)
      log_line(
          cfg.log_level, 1,
          "stats: " + FileStore(target).path_of(std::string(StoreState::kFolder) + "/stats.json"));
  } catch (...) {
    release_cache_lock(target);
    throw;
  }
  release_cache_lock(target);
  emit_event("complete", {{"store", target}, {"seconds", now_seconds() - session.started}});
  log_line(cfg.log_level, 1, fmt::format("done in {:.2f} s", now_seconds() - session.started));
}

bool run_jobs(const Config& cfg, const CacheSession& session, const AccessOptions& access) {
  FileStore store(session.build_root);
  StoreState state(store);
  const RunContext ctx{session.plan, store, state, cfg.log_level, "", session.plan_sha256};
  // The workers' secrets, for this run only (SLURM's workers read them from the store's side
  // folder, on the file system they share).
  SecretsChannel secrets(access, cfg.deploy_mode == "slurm"
                                     ? session.build_root + "/.zarr-parallel"
                                     : std::filesystem::temp_directory_path().string());
  if (cfg.deploy_mode == "series") {
    run_series(ctx, session.pending);
  } else if (cfg.deploy_mode == "slurm") {
    if (!run_slurm(ctx, session.pending, cfg)) {
      secrets.keep();  // the submitted jobs start later and read it then
      if (!secrets.path().empty())
        log_line(cfg.log_level, 1,
                 "note: the storage secrets stay in " + secrets.path() +
                     " (mode 0600) for the submitted jobs: delete its folder once they are done");
      return false;  // submitted only (await_completion: false)
    }
  } else {
    // This run's worker count, not the plan's: a resumed plan may have been made in series mode.
    run_local(ctx, session.pending, cfg.simultaneous_worker_limit, cfg.worker_timeout);
  }
  return true;
}

int run_cache(const Config& cfg, const CacheOptions& opt) {
  if (backend_of(cfg.cache_store) == Backend::S3) {
    // Local workers are stopped on a signal as for a folder store; series stops where it is.
    std::optional<TerminationGuard> guard;
    if (cfg.deploy_mode == "local") guard.emplace();
    return run_object_store_cache(cfg, opt);
  }
  CacheSession session = begin_cache(cfg, opt);
  if (session.status == CacheSession::Status::Stopped) return 3;
  if (session.status == CacheSession::Status::Ready) {
    const TerminationGuard guard;
    if (!run_jobs(cfg, session, session.plan.access)) return 0;
    finish_cache(cfg, session);
  }
  print_open_hint(session.status == CacheSession::Status::Hit ? canonical_path(cfg.cache_store)
                                                              : session.target);
  return 0;
}

}  // namespace zp
