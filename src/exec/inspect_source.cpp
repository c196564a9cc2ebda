#include "exec/inspect_source.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "core/json_nonfinite.hpp"
#include "core/units.hpp"
#include "plan/units.hpp"
#include "source/dataset_json.hpp"
#include "source/open_source.hpp"
#include "transform/selection.hpp"

namespace zp {

using json = nlohmann::ordered_json;

namespace {

std::string coord_range(const CoordinateValues& c) {
  if (c.values.empty()) return "(empty)";
  if (c.time) {
    return fmt::format("{} .. {}", format_datetime(from_us(c.time_us.front(), c.time->calendar)),
                       format_datetime(from_us(c.time_us.back(), c.time->calendar)));
  }
  return fmt::format("{} .. {}", c.values.front(), c.values.back());
}

}  // namespace

nlohmann::ordered_json inspect_source(const std::string& source, const std::string& engine,
                                      const std::string& concat_dim, const std::string& group,
                                      const AccessOptions& access,
                                      const nlohmann::json& filter_by_keys) {
  const Dataset ds = open_source(source, engine, concat_dim, group, access, filter_by_keys);
  const Coordinates coords = load_coordinates(ds);
  json out = {{"uri", ds.uri},
              {"engine", ds.engine},
              {"files", ds.files.size()},
              {"group", ds.group},
              {"groups", ds.groups}};
  json dims = json::array();
  for (const auto& d : ds.dims) {
    json j = {{"name", d.name}, {"size", d.size}, {"unlimited", d.unlimited}};
    const auto c = coords.find(d.name);
    if (c != coords.end()) j["range"] = coord_range(c->second);
    dims.push_back(j);
  }
  json vars = json::array();
  for (const auto& v : ds.variables) {
    uint64_t stored = 0;
    int64_t missing = 0;
    for (std::size_t i = 0; i < v.chunks.size(); ++i) {
      stored += stored_bytes(v, static_cast<int64_t>(i));
      missing += v.chunks[i].kind == ChunkRef::Kind::Missing;
    }
    json codecs = json::array();
    for (const auto& c : v.codecs) codecs.push_back(json::parse(c.config.dump()));
    vars.push_back(
        {{"name", v.name},
         {"dims", v.dims},
         {"shape", v.shape},
         {"dtype", v.object_codec.empty() ? v.dtype.str()
                                          : "|O (" + v.object_codec + ", longest " +
                                                std::to_string(v.dtype.size) + " bytes)"},
         {"chunks", v.grid.chunk_shape},
         {"num_chunks", v.grid.num_chunks()},
         {"missing_chunks", missing},
         {"stored_bytes", stored},
         {"codecs", codecs},
         {"fill_value", v.fill_value},
         {"attrs", nonfinite_numbers_to_markers(v.attrs)}});
    if (!v.layout_runs.empty()) vars.back()["layout_runs"] = layout_runs_json(v.layout_runs);
  }
  out["dims"] = dims;
  out["variables"] = vars;
  nlohmann::json unsupported = nlohmann::json::array();
  for (const auto& [name, what] : ds.unsupported)
    unsupported.push_back({{"name", name}, {"what", what}});
  out["not_cacheable"] = unsupported;
  out["attrs"] = nonfinite_numbers_to_markers(ds.attrs);
  return out;
}

}  // namespace zp
