#include "plan/planner.hpp"

#include "plan/encoding_runs.hpp"

namespace zp {

namespace {

// What it takes to untile: tile sizes, boundary, the lengths before padding or trimming.
void add_tiler_attrs(Attrs& attrs, const Selection::Tiling& tiling) {
  nlohmann::ordered_json sizes = nlohmann::ordered_json::object(), original = sizes;
  for (std::size_t i = 0; i < tiling.dims.size(); ++i) {
    sizes[tiling.dims[i]] = tiling.sizes[i];
    original[tiling.dims[i]] = tiling.original[i];
  }
  attrs["tiler_tile_sizes"] = sizes;
  attrs["tiler_boundary"] = tiling.pad ? "pad" : "trim";
  attrs["tiler_original_sizes"] = original;
  attrs["tiler_batch_dim"] = "batch_dim";
}

}  // namespace

Plan make_plan(const Dataset& ds, const Selection& sel, const Config& cfg, const PlanOptions& opt) {
  Plan plan;
  plan.config_hash = cfg.content_hash();
  plan.store = cfg.cache_store;
  plan.tool_version = ZP_VERSION;
  plan.zarr_format = cfg.zarr_format;
  plan.encoding = cfg.encoding;
  plan.files = ds.files;
  plan.access = ds.access;
  plan.global_attrs = ds.attrs;
  for (const auto& [k, v] : cfg.add_attrs.items()) plan.global_attrs[k] = v;
  if (sel.tiling) add_tiler_attrs(plan.global_attrs, *sel.tiling);
  plan.global_attrs["zarr_parallel_config_hash"] = plan.config_hash;
  plan.global_attrs["zarr_parallel_version"] = plan.tool_version;
  plan.arrays = build_arrays(ds, sel, cfg);
  for (auto& a : plan.arrays) apply_encoding_runs(a, ds.files, cfg.encoding == "decoded");
  plan.workers = opt.workers;
  plan.threads_per_worker = opt.threads_per_worker;
  plan.memory_limit = opt.memory_limit;
  plan.worker_timeout = cfg.worker_timeout;
  plan_jobs(plan, opt);
  return plan;
}

}  // namespace zp
