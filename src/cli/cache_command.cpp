// `cache CONFIG` and `plan CONFIG`: a config's plan, run or shown.
#include <fmt/format.h>

#include <memory>

#include "cli/commands.hpp"
#include "core/json_nonfinite.hpp"
#include "exec/cache_run.hpp"
#include "exec/progress.hpp"
#include "plan/plan_json.hpp"
#include "plan/plan_svg.hpp"

namespace zp {

namespace {

struct CacheArgs {
  std::string config_path;
  std::vector<std::string> sets;
  bool yes = false, json_events = false;
  int log_level = -1;
};

int run_cache_command(const CacheArgs& a) {
  set_json_events(a.json_events);
  Config cfg = load_config(a.config_path, a.sets);
  if (a.log_level >= 0) cfg.log_level = a.log_level;
  CacheOptions opt;
  opt.yes = a.yes;
  if (cfg.deploy_mode == "mpi") return run_cache_mpi(cfg, opt);
  return run_cache(cfg, opt);
}

struct PlanArgs {
  std::string config_path, svg_path;
  std::vector<std::string> sets, svg_dims;
  bool as_json = false;
};

int run_plan_command(const PlanArgs& a) {
  const Config cfg = load_config(a.config_path, a.sets);
  const Prepared p = prepare(cfg);
  // Only a new file or an earlier picture of ours is (over)written, never a user's file.
  if (!a.svg_path.empty()) write_plan_svg_file(a.svg_path, plan_svg(p.plan, a.svg_dims));
  if (a.as_json)
    fmt::print("{}\n", nonfinite_markers_to_tokens(plan_to_json(p.plan).dump(1)));
  else
    fmt::print("{}", describe_plan(p.plan));
  return 0;
}

}  // namespace

CommandRun setup_cache(CLI::App& cmd) {
  auto a = std::make_shared<CacheArgs>();
  cmd.add_option("CONFIG", a->config_path, "YAML config")->required();
  cmd.add_option("--set", a->sets, "override a config key: KEY=VALUE (YAML value)");
  cmd.add_flag("--yes,-y", a->yes, "proceed despite recommendations");
  cmd.add_option("--log-level", a->log_level, "0 quiet, 1 info, 2 debug")->check(CLI::Range(0, 2));
  cmd.add_flag("--json", a->json_events,
               "events as JSON lines on stdout (plan, recommendation, stopped, start, "
               "progress, job_done, done, cache_hit, complete, error)");
  return [a] { return run_cache_command(*a); };
}

CommandRun setup_plan(CLI::App& cmd) {
  auto a = std::make_shared<PlanArgs>();
  cmd.add_option("CONFIG", a->config_path, "YAML config")->required();
  cmd.add_option("--set", a->sets, "override a config key: KEY=VALUE");
  cmd.add_flag("--json", a->as_json, "the full plan as JSON (what workers run)");
  cmd.add_option("--svg", a->svg_path, "also draw the plan into this SVG file");
  cmd.add_option("--svg-dims", a->svg_dims,
                 "the dimensions to draw (rows, columns); default: the two largest")
      ->delimiter(',');
  return [a] { return run_plan_command(*a); };
}

}  // namespace zp
