#include <fmt/format.h>

#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "core/error.hpp"
#include "core/json_nonfinite.hpp"
#include "core/plural.hpp"
#include "core/terminal_text.hpp"
#include "exec/inspect_source.hpp"

namespace zp {

using json = nlohmann::ordered_json;

namespace {

nlohmann::json option_json(const std::string& text, const std::string& flag) {
  if (text.empty()) return nullptr;
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) throw Error::config(flag, "not valid JSON: " + text);
  return j;
}

AccessOptions access_of(const std::string& source, const std::string& storage_options,
                        const std::string& remote_protocol, const std::string& remote_options) {
  AccessOptions access;
  access.target = StorageOptions::from_json(option_json(storage_options, "--storage-options"),
                                            "--storage-options");
  if (!remote_options.empty()) {
    access.remote = StorageOptions::from_json(option_json(remote_options, "--remote-options"),
                                              "--remote-options");
    access.remote_given = true;
  }
  access.remote_protocol = remote_protocol;
  access.scope_to(source);
  return access;
}

void print_header(const json& out) {
  print_safe("source     {} ({} engine, {})\n", out["uri"].get<std::string>(),
             out["engine"].get<std::string>(), counted(out["files"].get<int64_t>(), "file"));
  if (!out["group"].get<std::string>().empty())
    print_safe("group      {}\n", out["group"].get<std::string>());
  if (!out["groups"].empty()) {
    std::string g;
    for (const auto& x : out["groups"]) g += (g.empty() ? "" : ", ") + x.get<std::string>();
    print_safe("groups     {} (read one with --group / group:)\n", g);
  }
  print_safe("dimensions\n");
  for (const auto& d : out["dims"])
    print_safe("  {:<12} {:>8}{}  {}\n", d["name"].get<std::string>(), d["size"].get<int64_t>(),
               d["unlimited"].get<bool>() ? " (unlimited)" : "", d.value("range", ""));
}

// Files chunked or compressed differently: each run of files' chunks and codecs.
void print_layout_runs(const json& v) {
  std::string runs;
  for (const auto& r : v["layout_runs"])
    runs += fmt::format("{}from file {}: chunks {} codecs {}", runs.empty() ? "" : "; ",
                        r["first_file"].get<int64_t>(), r["chunk_shape"].dump(),
                        r["codecs"].empty() ? "none" : r["codecs"].dump());
  print_safe("  {:<12} per file: {}\n", "", runs);
}

void print_encoding(const json& v) {
  std::string enc;
  for (const char* k : {"scale_factor", "add_offset", "missing_value", "units", "calendar"})
    if (v["attrs"].contains(k))
      enc += fmt::format("{}={} ", k, nonfinite_markers_to_tokens(v["attrs"][k].dump()));
  if (!v["fill_value"].is_null()) {
    const auto& f = v["fill_value"];  // Zarr's spelling "NaN" is the float NaN
    enc += "_FillValue=" + (f.is_string() && (f == "NaN" || f == "Infinity" || f == "-Infinity")
                                ? f.get<std::string>()
                                : f.dump());
  }
  if (!enc.empty()) print_safe("  {:<12} {}\n", "", enc);
}

void print_variable(const json& v) {
  std::string codecs, dims, chunks;
  for (const auto& c : v["codecs"]) codecs += (codecs.empty() ? "" : " + ") + c.dump();
  for (const auto& d : v["dims"]) dims += (dims.empty() ? "" : ", ") + d.get<std::string>();
  for (const auto& c : v["chunks"]) chunks += (chunks.empty() ? "" : ", ") + c.dump();
  print_safe("  {:<12} ({}) {}  chunks ({})  {}  codecs: {}\n", v["name"].get<std::string>(), dims,
             v["dtype"].get<std::string>(), chunks,
             counted(v["num_chunks"].get<int64_t>(), "chunk"), codecs.empty() ? "none" : codecs);
  if (v.contains("layout_runs")) print_layout_runs(v);
  print_encoding(v);
}

struct InspectArgs {
  std::string source, engine = "auto", concat_dim, group;
  std::string storage_options, remote_protocol, remote_options;
  bool as_json = false;
};

}  // namespace

int inspect_command(const std::string& source, const std::string& engine, const std::string& group,
                    const std::string& concat_dim, bool as_json, const std::string& storage_options,
                    const std::string& remote_protocol, const std::string& remote_options) {
  const AccessOptions access = access_of(source, storage_options, remote_protocol, remote_options);
  const json out = inspect_source(source, engine, concat_dim, group, access);
  if (as_json) {
    fmt::print("{}\n", nonfinite_markers_to_tokens(out.dump(2)));
    return 0;
  }
  print_header(out);
  print_safe("variables\n");
  for (const auto& v : out["variables"]) print_variable(v);
  for (const auto& u : out["not_cacheable"])
    print_safe("  {:<12} is {}: not cacheable yet\n", u["name"].get<std::string>(),
               u["what"].get<std::string>());
  return 0;
}

CommandRun setup_inspect(CLI::App& cmd) {
  auto a = std::make_shared<InspectArgs>();
  cmd.add_option("SOURCE", a->source,
                 "file glob, kerchunk .json or .zarr folder; also https:// and s3:// URLs")
      ->required();
  cmd.add_option("--engine", a->engine, "auto | netcdf | kerchunk | zarr");
  cmd.add_option("--concat-dim", a->concat_dim, "dimension to join files along");
  cmd.add_option("--group", a->group, "a NetCDF-4 group or Zarr subgroup (path: a/b)");
  cmd.add_flag("--json", a->as_json, "JSON output");
  cmd.add_option("--storage-options", a->storage_options,
                 "remote SOURCE: JSON as the config's storage_options, e.g. '{\"anon\": true}'");
  cmd.add_option("--remote-protocol", a->remote_protocol, "reference set: protocol of chunk URLs");
  cmd.add_option("--remote-options", a->remote_options,
                 "reference set: JSON options for chunk URLs");
  return [a] {
    return inspect_command(a->source, a->engine, a->group, a->concat_dim, a->as_json,
                           a->storage_options, a->remote_protocol, a->remote_options);
  };
}

}  // namespace zp
