// zarr-parallel command line: argument parsing only. Each subcommand calls the library; errors
// become one message on stderr and the exit code of their kind (see README, "Exit codes").
#include <fmt/format.h>
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/json_nonfinite.hpp"
#include "exec/cache_run.hpp"
#include "exec/executor.hpp"
#include "exec/make_refs.hpp"
#include "exec/progress.hpp"
#include "exec/termination.hpp"
#include "plan/plan_json.hpp"
#include "plan/plan_svg.hpp"
#include "source/netcdf_source.hpp"
#include "source/scan_cache.hpp"
#include "store/url_scope.hpp"

int main(int argc, char** argv) {
  // Chunk buffers (hundreds of KB to tens of MB) come from the heap and are reused. glibc's default
  // maps each one fresh and unmaps it when freed: W2's 2 MB chunks spent 1.0 s of system time in
  // page faults and zeroing, 0.6 s with this. Our own processes only: the Python module leaves
  // its host's allocator alone.
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  CLI::App app{
      "zarr-parallel: cache gridded archives (NetCDF/HDF5, kerchunk, Zarr) into rechunked Zarr "
      "stores, in parallel",
      // Named, not taken from argv[0]: an installed Python package runs its engine binary from
      // inside site-packages, a path --help should not show.
      "zarr-parallel"};
  app.set_version_flag("--version",
                       std::string(ZP_VERSION) + (zp::mpi_built() ? " (mpi)" : " (no mpi)"));
  app.require_subcommand(1);

  std::string config_path, source, engine = "auto", concat_dim, group, plan_path, store_path,
                                   worker_id = "worker";
  std::vector<std::string> sets;
  std::vector<int64_t> job_ids;
  bool yes = false, as_json = false;
  int log_level = -1, threads = 0;

  auto* cache = app.add_subcommand("cache", "plan and write the cache");
  cache->add_option("CONFIG", config_path, "YAML config")->required();
  cache->add_option("--set", sets, "override a config key: KEY=VALUE (YAML value)");
  cache->add_flag("--yes,-y", yes, "proceed despite recommendations");
  cache->add_option("--log-level", log_level, "0 quiet, 1 info, 2 debug")->check(CLI::Range(0, 2));
  bool json_events = false;
  cache->add_flag("--json", json_events,
                  "events as JSON lines on stdout (plan, recommendation, stopped, start, "
                  "progress, job_done, done, cache_hit, complete, error)");

  auto* plan = app.add_subcommand("plan", "print the plan and recommendations; writes nothing");
  plan->add_option("CONFIG", config_path, "YAML config")->required();
  plan->add_option("--set", sets, "override a config key: KEY=VALUE");
  plan->add_flag("--json", as_json, "the full plan as JSON (what workers run)");
  std::string svg_path;
  plan->add_option("--svg", svg_path, "also draw the plan into this SVG file");
  std::vector<std::string> svg_dims;
  plan->add_option("--svg-dims", svg_dims,
                   "the dimensions to draw (rows, columns); default: the two largest")
      ->delimiter(',');

  auto* inspect = app.add_subcommand(
      "inspect", "dimensions, coordinates, variables, encodings, source chunk grid");
  inspect
      ->add_option("SOURCE", source,
                   "file glob, kerchunk .json or .zarr folder; also https:// and s3:// URLs")
      ->required();
  inspect->add_option("--engine", engine, "auto | netcdf | kerchunk | zarr");
  inspect->add_option("--concat-dim", concat_dim, "dimension to join files along");
  inspect->add_option("--group", group, "a NetCDF-4 group or Zarr subgroup (path: a/b)");
  inspect->add_flag("--json", as_json, "JSON output");
  std::string storage_options, remote_protocol, remote_options;
  inspect->add_option(
      "--storage-options", storage_options,
      "remote SOURCE: JSON as the config's storage_options, e.g. '{\"anon\": true}'");
  inspect->add_option("--remote-protocol", remote_protocol,
                      "reference set: protocol of chunk URLs");
  inspect->add_option("--remote-options", remote_options,
                      "reference set: JSON options for chunk URLs");

  auto* refs = app.add_subcommand(
      "refs", "write a kerchunk reference set of NetCDF-4/HDF5 files or a Zarr store");
  std::vector<std::string> refs_sources;
  std::string refs_out;
  int64_t inline_threshold = 500;
  bool relative = false;
  refs->add_option("SOURCE", refs_sources, "NetCDF files or globs (joined), a Zarr store")
      ->required();
  refs->add_option("-o,--output", refs_out, "the reference set to write (.json)")->required();
  refs->add_option("--concat-dim", concat_dim,
                   "dimension to join files along (default: the unlimited one)");
  refs->add_option("--inline-threshold", inline_threshold,
                   "chunks under this many bytes are inlined (0: none)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  refs->add_flag("--relative", relative,
                 "paths relative to the output's folder (default: absolute)");
  refs->add_option("--engine", engine, "auto | netcdf | zarr | kerchunk");
  refs->add_option("--group", group, "a NetCDF-4 group or Zarr subgroup (path: a/b)");

  auto* scan_parts =
      app.add_subcommand("scan-parts", "");  // internal: the parallel scan's children
  scan_parts->group("");
  std::vector<std::string> scan_files;
  scan_parts->add_option("--group", group, "group");
  scan_parts->add_option("FILES", scan_files, "files");
  std::string scan_list;
  scan_parts->add_option("--files-from", scan_list, "file of NUL-separated file names");
  bool scan_join = false;
  std::string scan_concat_dim;
  scan_parts->add_flag("--join", scan_join, "also print the files joined");
  scan_parts->add_option("--concat-dim", scan_concat_dim, "dimension to join along");

  // internal: a NetCDF-4 file by URL described in a child (options and secrets on stdin)
  auto* describe_url = app.add_subcommand("describe-url", "");
  describe_url->group("");
  std::string describe_url_location;
  describe_url->add_option("--group", group, "group");
  describe_url->add_option("URL", describe_url_location, "url")->required();

  auto* worker = app.add_subcommand("worker", "run jobs of a saved plan (what executors call)");
  worker->add_option("PLAN", plan_path, "plan JSON (STORE/.zarr-parallel/plan.json)")->required();
  std::string task_list;
  int64_t task = -1;
  worker->add_option("JOB_ID", job_ids, "job ids");
  worker->add_option("--task-list", task_list,
                     "file with the job ids of each array task, a line a task");
  worker->add_option("--task", task, "line of --task-list to run (0-based: $SLURM_ARRAY_TASK_ID)");
  worker->add_option("--threads", threads, "decode/encode threads (default: the plan's)");
  worker->add_option("--worker-id", worker_id, "name used for heartbeats");
  int jobs_fd = -1;
  worker->add_option("--jobs-from-fd", jobs_fd,
                     "take job ids from this socket, a line each, until it closes (local mode)");

  auto* status = app.add_subcommand("status", "jobs done / total, live workers, heartbeats");
  status->add_option("STORE", store_path, "cache store")->required();
  status->add_flag("--json", as_json, "JSON output");

  auto* verify =
      app.add_subcommand("verify", "re-read the source selection and compare it with the cache");
  verify->add_option("CONFIG", config_path, "YAML config")->required();
  verify->add_option("--set", sets, "override a config key: KEY=VALUE");

  // Large NetCDF globs are scanned by children running this binary (`scan-parts`).
  {
    std::error_code ec;
    const auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) zp::set_scan_executable(self.string());
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  try {
    if (*cache) {
      zp::set_json_events(json_events);
      zp::Config cfg = zp::load_config(config_path, sets);
      if (log_level >= 0) cfg.log_level = log_level;
      zp::CacheOptions opt;
      opt.yes = yes;
      if (cfg.deploy_mode == "mpi") return zp::run_cache_mpi(cfg, opt);
      return zp::run_cache(cfg, opt);
    }
    if (*plan) {
      const zp::Config cfg = zp::load_config(config_path, sets);
      const zp::Prepared p = zp::prepare(cfg);
      if (!svg_path.empty()) {
        // Only a new file or an earlier picture of ours is (over)written, never a user's file.
        zp::write_plan_svg_file(svg_path, zp::plan_svg(p.plan, svg_dims));
      }
      if (as_json)
        fmt::print("{}\n", zp::nonfinite_markers_to_tokens(zp::plan_to_json(p.plan).dump(1)));
      else
        fmt::print("{}", zp::describe_plan(p.plan));
      return 0;
    }
    if (*inspect)
      return zp::inspect_command(source, engine, group, concat_dim, as_json, storage_options,
                                 remote_protocol, remote_options);
    if (*worker) {
      if (!task_list.empty()) job_ids = zp::task_jobs(task_list, task);
      if (job_ids.empty() && jobs_fd < 0)
        throw zp::Error::config("JOB_ID", "give job ids, or --task-list and --task");
      const zp::Plan p = zp::load_plan(plan_path);
      if (jobs_fd >= 0) {
        zp::serve_worker_jobs(p, threads > 0 ? threads : p.threads_per_worker, worker_id, jobs_fd);
        return 0;
      }
      zp::run_worker_jobs(p, job_ids, threads > 0 ? threads : p.threads_per_worker, worker_id);
      return 0;
    }
    if (*describe_url) {
      std::string options((std::istreambuf_iterator<char>(std::cin)), {});
      std::cout << zp::describe_url_text(describe_url_location, group, options) << std::flush;
      return 0;
    }
    if (*scan_parts) {
      if (!scan_list.empty()) {
        std::ifstream in(scan_list, std::ios::binary);
        for (std::string name; std::getline(in, name, '\0');)
          if (!name.empty()) scan_files.push_back(name);
      }
      if (scan_join) {
        zp::scan_and_join(scan_files, group, scan_concat_dim, std::cout);
        return 0;
      }
      for (const auto& f : scan_files) std::cout << zp::scan_part_text(f, group) << std::flush;
      return 0;
    }
    if (*refs) {
      zp::RefsRequest r;
      r.sources = refs_sources;
      r.out = refs_out;
      r.concat_dim = concat_dim;
      r.engine = engine;
      r.group = group;
      r.inline_threshold = inline_threshold;
      r.relative = relative;
      const auto summary = zp::make_refs(r);
      fmt::print(
          stderr,
          "zarr-parallel: {}: {} variables, {} chunk references ({} inline) over {} file(s)\n",
          refs_out, summary["variables"].get<int64_t>(), summary["chunks"].get<int64_t>(),
          summary["inline"].get<int64_t>(), summary["files"].get<int64_t>());
      return 0;
    }
    if (*status) return zp::status_command(store_path, as_json);
    if (*verify) return zp::verify_command(config_path, sets);
  } catch (const zp::Error& e) {
    // Whatever location a message quotes is shown redacted, however it reached the message.
    const std::string message = zp::redact_urls_in(e.what());
    fmt::print(stderr, "zarr-parallel: error: {}\n", message);
    zp::emit_event("error", {{"message", message},
                             {"exit_code", e.kind() == zp::ErrorKind::Interrupted
                                               ? 128 + zp::termination_signal()
                                               : e.exit_code()}});
    if (e.kind() == zp::ErrorKind::Interrupted) return 128 + zp::termination_signal();
    return e.exit_code();
  } catch (const std::exception& e) {
    fmt::print(stderr, "zarr-parallel: internal error: {}\n", zp::redact_urls_in(e.what()));
    return 1;
  }
  return 0;
}
