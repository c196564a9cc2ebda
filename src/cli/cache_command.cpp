// `cache CONFIG` and `plan CONFIG`: a config's plan, run or shown.
#include <fmt/format.h>

#include <memory>
#include <optional>

#include "cli/commands.hpp"
#include "core/json_nonfinite.hpp"
#include "core/terminal_text.hpp"
#include "exec/append_run.hpp"
#include "exec/cache_run.hpp"
#include "exec/progress.hpp"
#include "plan/plan_json.hpp"
#include "plan/plan_svg.hpp"
#include "plan/simulate.hpp"

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
  std::string config_path, svg_path, simulate;
  std::vector<std::string> sets, svg_dims;
  bool as_json = false;
};

nlohmann::json simulation_json(const SimulationResult& r) {
  return {{"workers", r.spec.workers},
          {"slow_fraction", r.spec.slow_fraction},
          {"slow_factor", r.spec.slow_factor},
          {"slow_workers", r.slow_workers},
          {"fail_fraction", r.spec.fail_fraction},
          {"seeds", r.seeds},
          {"ideal_seconds", r.ideal_seconds},
          {"makespan_seconds", r.makespan_seconds},
          {"makespan_without_copies_seconds", r.makespan_without_copies},
          {"ratio", r.ratio},
          {"ratio_without_copies", r.ratio_without_copies}};
}

int run_plan_command(const PlanArgs& a) {
  // A bad --simulate is refused before the sources are opened.
  const auto spec = a.simulate.empty() ? std::optional<SimulateSpec>()
                                       : std::optional(parse_simulate_spec(a.simulate));
  const Config cfg = load_config(a.config_path, a.sets);
  Prepared p = prepare(cfg);
  const auto sim = spec ? std::optional(simulate_plan(p.plan, *spec)) : std::nullopt;
  // What a cache run would do with the store (hit, append, rebuild...); an append's plan.
  const Decision d = preview_decision(cfg, p.plan);
  // Only a new file or an earlier picture of ours is (over)written, never a user's file.
  if (!a.svg_path.empty()) write_plan_svg_file(a.svg_path, plan_svg(p.plan, a.svg_dims));
  if (a.as_json) {
    auto j = plan_to_json(p.plan);
    j.update(decision_fields(d));
    if (sim) j["simulation"] = simulation_json(*sim);
    fmt::print("{}\n", nonfinite_markers_to_tokens(j.dump(1)));
  } else {
    print_safe("decision         {}: {}\n{}", decision_name(d.kind), d.reason,
               describe_plan(p.plan));
    if (sim) print_safe("{}", describe_simulation(*sim, p.plan.workers));
  }
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
  cmd.add_option("--simulate", a->simulate,
                 "predicted run time over the ideal on WORKERS[,slow=P%xF][,fail=Q%] "
                 "(e.g. 100,slow=5%x3,fail=1%)");
  cmd.add_option("--svg-dims", a->svg_dims,
                 "the dimensions to draw (rows, columns); default: the two largest")
      ->delimiter(',');
  return [a] { return run_plan_command(*a); };
}

}  // namespace zp
