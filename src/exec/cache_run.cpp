#include "exec/cache_run.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <thread>

#include "core/error.hpp"
#include "core/units.hpp"
#include "exec/executor.hpp"
#include "exec/progress.hpp"
#include "plan/plan_json.hpp"
#include "plan/planner.hpp"
#include "plan/recommend.hpp"
#include "source/open_source.hpp"
#include "write/zarr_metadata.hpp"

namespace zp {

namespace fs = std::filesystem;
using json = nlohmann::json;

Prepared prepare(const Config& cfg) {
  Prepared p{cfg, {}, {}, {}, {}};
  p.dataset = open_source(cfg.data_uri, cfg.engine, cfg.concat_dim);
  p.coordinates = load_coordinates(p.dataset);
  p.selection = apply_preprocessors(p.dataset, p.coordinates, cfg.preprocessors);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const PlanOptions opt = plan_options(cfg, cores);
  p.plan = make_plan(p.dataset, p.selection, cfg, opt);
  p.plan.recommendations = recommend(p.dataset, p.coordinates, p.selection, cfg, opt, p.plan);
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
      "\njobs             {} on {} worker(s) x {} thread(s)\n"
      "output           {} in {} chunks\n"
      "source chunks    {} needed, {} stored\n"
      "read             {} (read amplification {:.2f})\n"
      "peak memory      {} per worker (limit {})\n",
      plan.jobs.size(), plan.workers, plan.threads_per_worker,
      format_bytes(static_cast<double>(s.output_bytes)), s.output_chunks, s.source_chunks,
      format_bytes(static_cast<double>(s.needed_bytes)),
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
    out += fmt::format("  job {:>4}  {}  {}  {} output chunks, {} source chunks, reads {}\n", j.id,
                       a.name, region, j.region.num_chunks(), j.source_chunks.size(),
                       format_bytes(static_cast<double>(j.read_bytes)));
  }
  if (plan.jobs.size() > max_jobs)
    out += fmt::format("  ... {} more jobs (plan --json lists all)\n", plan.jobs.size() - max_jobs);
  if (plan.recommendations.empty()) {
    out += "recommendations  none: selection and chunks align with the source chunks\n";
  } else {
    out += "recommendations:\n";
    for (const auto& r : plan.recommendations) out += fmt::format("  - {}: {}\n", r.key, r.message);
  }
  return out;
}

namespace {

bool looks_like_zarr(const fs::path& p) {
  return fs::exists(p / ".zgroup") || fs::exists(p / ".zarray") || fs::exists(p / ".zmetadata") ||
         fs::exists(p / StoreState::kFolder) || fs::exists(p / "zarr.json");
}

void remove_store(const fs::path& p) {
  std::error_code ec;
  if (!fs::is_directory(p, ec))
    throw Error::store(p.string(), "exists and is not a folder; refusing to replace it");
  if (!fs::is_empty(p, ec) && !looks_like_zarr(p))
    throw Error::store(
        p.string(),
        "exists and is not a Zarr store; refusing to delete it (choose another cache_store)");
  fs::remove_all(p, ec);
  if (ec) throw Error::store(p.string(), "cannot remove the old store: " + ec.message());
}

bool ask_to_continue(const Plan& plan) {
  fmt::print(stderr, "Recommendations:\n");
  for (const auto& r : plan.recommendations) fmt::print(stderr, "  - {}: {}\n", r.key, r.message);
  if (!(isatty(STDIN_FILENO) && isatty(STDERR_FILENO))) {
    fmt::print(
        stderr,
        "zarr-parallel: stopped on recommendations (exit 3). Change the config, or run again with "
        "--yes or recommend_changes: false to proceed as planned.\n");
    return false;
  }
  fmt::print(stderr, "Continue without recommendations? (y/n) ");
  std::string answer;
  std::getline(std::cin, answer);
  return !answer.empty() && (answer[0] == 'y' || answer[0] == 'Y');
}

json stats_json(const Plan& plan, const StoreState& state, double wall) {
  json jobs = json::array();
  uint64_t read = 0, written = 0, peak = 0;
  for (const auto& j : state.done_jobs()) {
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
  fmt::print("{}\nimport xarray as xr\nds = xr.open_zarr(\"{}\")\n", store, store);
}

CacheSession begin_cache(const Config& cfg, const CacheOptions& opt) {
  CacheSession session;
  session.started = now_seconds();
  const fs::path store_path(cfg.cache_store);
  const std::string hash = cfg.content_hash();
  FileStore store(cfg.cache_store);
  StoreState state(store);
  std::error_code ec;
  const bool exists = fs::exists(store_path, ec);

  if (exists && fs::is_directory(store_path) && state.completed_hash() == hash) {
    log_line(cfg.log_level, 1, "cache hit: " + cfg.cache_store + " was made from this config");
    session.status = CacheSession::Status::Hit;
    return session;
  }
  if (std::find(opt.modes.begin(), opt.modes.end(), cfg.deploy_mode) == opt.modes.end())
    throw Error::config(
        "deploy_mode",
        "'" + cfg.deploy_mode + "' cannot run from here: the CLI runs series, local, " +
            "slurm and (under mpirun) mpi; dask_distributed runs from the Python module");

  Prepared prep = prepare(cfg);
  session.plan = std::move(prep.plan);
  Plan& plan = session.plan;
  if (!plan.recommendations.empty() && cfg.recommend_changes && !opt.yes &&
      !(opt.ask && ask_to_continue(plan))) {
    session.status = CacheSession::Status::Stopped;
    return session;
  }

  if (exists && fs::is_directory(store_path)) state.acquire_lock();  // refuses a live holder
  const auto started = exists ? state.started() : std::nullopt;
  const bool same_config = started && started->value("config_hash", "") == hash;
  bool resuming = false;
  if (exists) {
    if (cfg.resume && same_config) {
      resuming = true;
    } else if (cfg.overwrite) {
      remove_store(store_path);
    } else {
      throw Error::store(cfg.cache_store,
                         same_config ? "an unfinished cache of this config is here: set resume: "
                                       "true to finish it, or overwrite: true to start again"
                                     : "exists (made from another config or by another tool); set "
                                       "overwrite: true to replace it");
    }
  }
  if (resuming) {
    plan = load_plan(state.plan_path());  // the jobs as first planned, so done markers still match
    store.remove_stale_temporaries();
    log_line(cfg.log_level, 1, "resuming " + cfg.cache_store);
  } else {
    fs::create_directories(store_path, ec);
    if (ec) throw Error::store(cfg.cache_store, "cannot create: " + ec.message());
    state.acquire_lock();
    state.write_started(hash);
    state.write_plan(plan_to_json(plan).dump());
  }
  write_metadata(plan, store);
  {
    ThreadPool pool(1);
    JobRunner runner(plan, store, pool);
    for (std::size_t i = 0; i < plan.arrays.size(); ++i)
      if (plan.arrays[i].coordinate) runner.run_whole_array(static_cast<int>(i));
  }
  for (const auto& j : plan.jobs)
    if (!state.is_done(j.id)) session.pending.push_back(j.id);
  session.plan_path = state.plan_path();
  session.status = CacheSession::Status::Ready;
  log_line(cfg.log_level, 1,
           fmt::format("{} jobs to run ({} already done), {} mode, read amplification {:.2f}, "
                       "predicted peak {} per worker",
                       session.pending.size(), plan.jobs.size() - session.pending.size(),
                       cfg.deploy_mode, plan.summary.read_amplification,
                       format_bytes(static_cast<double>(plan.summary.peak_memory))));
  return session;
}

void finish_cache(const Config& cfg, const CacheSession& session) {
  FileStore store(cfg.cache_store);
  StoreState state(store);
  const Plan& plan = session.plan;
  for (const auto& j : plan.jobs)
    if (!state.is_done(j.id))
      throw Error(ErrorKind::Job,
                  fmt::format("job {} has no done marker; run again with resume: true", j.id));
  write_consolidated(plan, store);
  if (cfg.generate_stats) {
    state.write_stats(stats_json(plan, state, now_seconds() - session.started));
    log_line(cfg.log_level, 1,
             "stats: " + store.path_of(std::string(StoreState::kFolder) + "/stats.json"));
  }
  state.mark_complete(cfg.content_hash());
  state.release_lock();
  log_line(cfg.log_level, 1, fmt::format("done in {:.2f} s", now_seconds() - session.started));
}

int run_cache(const Config& cfg, const CacheOptions& opt) {
  CacheSession session = begin_cache(cfg, opt);
  if (session.status == CacheSession::Status::Stopped) return 3;
  if (session.status == CacheSession::Status::Ready) {
    FileStore store(cfg.cache_store);
    StoreState state(store);
    const RunContext ctx{session.plan, store, state, cfg.log_level};
    if (cfg.deploy_mode == "series") {
      run_series(ctx, session.pending);
    } else if (cfg.deploy_mode == "slurm") {
      if (!run_slurm(ctx, session.pending, cfg))
        return 0;  // submitted only (await_completion: false)
    } else {
      run_local(ctx, session.pending, session.plan.workers, cfg.worker_timeout);
    }
    finish_cache(cfg, session);
  }
  print_open_hint(cfg.cache_store);
  return 0;
}

}  // namespace zp
