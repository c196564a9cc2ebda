// `refs SOURCE... -o OUT`: a kerchunk reference set. The options fill the request directly.
#include <fmt/format.h>

#include <memory>

#include "cli/commands.hpp"
#include "core/console.hpp"
#include "core/plural.hpp"
#include "exec/make_refs.hpp"

namespace zp {

namespace {

int run_refs_command(const RefsRequest& r) {
  const auto summary = make_refs(r);
  say(stderr, fmt::format("zarr-parallel: {}: {}, {} ({} inline) over {}\n", r.out,
                          counted(summary["variables"].get<int64_t>(), "variable"),
                          counted(summary["chunks"].get<int64_t>(), "chunk reference"),
                          summary["inline"].get<int64_t>(),
                          counted(summary["files"].get<int64_t>(), "file")));
  return 0;
}

}  // namespace

CommandRun setup_refs(CLI::App& cmd) {
  auto r = std::make_shared<RefsRequest>();
  cmd.add_option("SOURCE", r->sources, "NetCDF or GRIB files or globs (joined), a Zarr store")
      ->required();
  cmd.add_option("-o,--output", r->out, "the reference set to write (.json)")->required();
  cmd.add_option("--concat-dim", r->concat_dim,
                 "dimension to join files along (default: the unlimited one)");
  cmd.add_option("--inline-threshold", r->inline_threshold,
                 "chunks under this many bytes are inlined (0: none)")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd.add_flag("--relative", r->relative,
               "paths relative to the output's folder (default: absolute)");
  cmd.add_option("--engine", r->engine, "auto | netcdf | zarr | kerchunk | grib");
  cmd.add_option("--group", r->group, "a NetCDF-4 group or Zarr subgroup (path: a/b)");
  return [r] { return run_refs_command(*r); };
}

}  // namespace zp
