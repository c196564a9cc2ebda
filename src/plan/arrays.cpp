#include "plan/arrays.hpp"

#include <algorithm>
#include <set>

#include "core/error.hpp"
#include "plan/cf_references.hpp"
#include "plan/output_array.hpp"
#include "plan/tiling.hpp"
#include "plan/value_steps.hpp"
#include "store/file_store.hpp"

namespace zp {

namespace {

void check_array_name(const std::string& name, const std::string& key) {
  const bool bad = name.empty() || name.front() == '.' || name.find('/') != std::string::npos ||
                   name.find('\\') != std::string::npos;
  try {
    if (!bad) check_safe_key(name);
  } catch (const Error&) {
    throw Error::config(key, "'" + name + "' cannot be a Zarr array name");
  }
  if (bad)
    throw Error::config(key, "'" + name + "' cannot be a Zarr array name (no '/', no leading '.')");
  // A folder of the store: its name must fit a file system's (255 bytes), and a v3 array named
  // zarr.json would be the store's own metadata. Refused here, before the store exists.
  if (name.size() > 255)
    throw Error::config(key, "'" + name.substr(0, 40) + "...' is " + std::to_string(name.size()) +
                                 " bytes: a Zarr array name is a folder name, at most 255 bytes "
                                 "(rename it)");
  if (name == "zarr.json")
    throw Error::config(key, "'zarr.json' cannot be a Zarr array name (rename it)");
}

// Nothing to cache: no data variable and no coordinate (the groups are named, where there are).
[[noreturn]] void refuse_nothing_to_cache(const Dataset& ds) {
  std::string groups;
  for (const auto& g : ds.groups) groups += (groups.empty() ? "" : ", ") + g;
  throw Error::source(ds.uri,
                      "has no data variables to cache" +
                          (groups.empty() ? std::string()
                                          : " in " +
                                                (ds.group.empty() ? std::string("its root group")
                                                                  : "group '" + ds.group + "'") +
                                                "; its groups: " + groups + " (set group:)"));
}

// The variables to cache: `variables:`, each with what it needs to be read as it is in the source,
// or every data variable. Refuses what cannot be cached yet, and a source with nothing to cache.
std::vector<VariableSpec> requested_specs(const Dataset& ds, const Selection& sel,
                                          const Config& cfg) {
  std::vector<VariableSpec> specs = cfg.variables;
  auto unsupported_list = [&] {
    std::string s;
    for (const auto& [name, what] : ds.unsupported)
      s += (s.empty() ? "" : ", ") + name + " (" + what + ")";
    return s;
  };
  if (specs.empty() && !ds.unsupported.empty())
    throw Error::source(ds.uri, "cannot cache these variables yet: " + unsupported_list() +
                                    "; name the variables to cache under `variables:` to leave "
                                    "them out");
  for (const auto& spec : specs)
    for (const auto& [name, what] : ds.unsupported)
      if (spec.name == name)
        throw Error::config("variables." + name,
                            "'" + name + "' is " + what + ", which zarr-parallel cannot cache yet");
  if (specs.empty())
    for (const auto& name : ds.data_variable_names()) specs.push_back({name, {}});
  // A subset keeps what each named variable needs to be read as it is in the source.
  for (std::size_t i = 0; i < specs.size() && !cfg.variables.empty(); ++i) {
    const Variable* v = ds.find(specs[i].name);
    for (const auto& cand : ds.variables)
      if (sel.output_name_of_var(cand.name) == specs[i].name) v = &cand;
    if (!v) continue;
    for (const auto& c : companions_of(ds, *v)) {
      const std::string out_name = sel.output_name_of_var(c);
      bool listed = false;
      for (const auto& s : specs) listed |= s.name == out_name || s.name == c;
      if (!listed) specs.push_back({out_name, {}});
    }
  }
  // Coordinates only: xarray opens them as they are (build_arrays adds every dimension coordinate).
  // Beside groups, the data is in the groups: refused naming them, never a store of the root's
  // coordinates alone.
  bool coordinates_only = false;
  if (specs.empty() && cfg.variables.empty() && ds.groups.empty())
    for (const auto& v : ds.variables)
      if (ds.is_dimension_coordinate(v)) coordinates_only = true;
  if (specs.empty() && !coordinates_only) refuse_nothing_to_cache(ds);
  return specs;
}

// The arrays of `specs`; `coord_dims` collects the dimensions whose coordinates come along.
void add_spec_arrays(std::vector<ArrayPlan>& arrays, std::vector<std::string>& coord_dims,
                     const std::vector<VariableSpec>& specs, const Dataset& ds,
                     const Selection& sel, const Config& cfg) {
  for (const auto& spec : specs) {
    const Variable* v = nullptr;
    for (const auto& cand : ds.variables)
      if (sel.output_name_of_var(cand.name) == spec.name) v = &cand;
    if (!v) v = ds.find(spec.name);
    if (!v) {
      std::string known;
      for (const auto& n : ds.data_variable_names())
        known += (known.empty() ? "" : ", ") + sel.output_name_of_var(n);
      throw Error::config("variables." + spec.name,
                          "no variable '" + spec.name + "' in " + ds.uri + " (has: " + known + ")");
    }
    if (ds.is_dimension_coordinate(*v) && spec.transforms.empty()) {
      // Asked for a coordinate: it comes along with the data anyway.
      if (std::find(coord_dims.begin(), coord_dims.end(), v->name) == coord_dims.end())
        coord_dims.push_back(v->name);
      continue;
    }
    ArrayPlan a = make_array(sel, *v, cfg, false);
    apply_variable_transforms(a, spec);
    check_array_name(a.name, "variables." + spec.name);
    arrays.push_back(std::move(a));
    for (const auto& d : v->dims)
      if (std::find(coord_dims.begin(), coord_dims.end(), d) == coord_dims.end())
        coord_dims.push_back(d);
  }
}

// Refuses output arrays that clash, and shards/chunks naming no output dimension.
void check_output_arrays(const std::vector<ArrayPlan>& arrays, const Selection& sel,
                         const Config& cfg) {
  std::set<std::string> names;
  for (const auto& a : arrays)
    if (!names.insert(a.name).second)
      throw Error::config("variables", "two output arrays are named '" + a.name + "'");
  if (sel.tiling && !cfg.shards.empty())
    throw Error::config("shards", "tiled output is not sharded yet: leave shards out");
  if (cfg.zarr_format == 3)
    for (const auto& a : arrays)
      if (!a.conversion.out.numeric() && a.conversion.out.kind != 'b')
        throw Error::config("zarr_format",
                            "array '" + a.name + "' holds text (" + a.conversion.out.str() +
                                "), which zarr-parallel writes to Zarr v2 only so far: use "
                                "zarr_format: 2 or leave it out with variables:");
  for (const auto& [dim, size] : cfg.shards) {
    bool known = false;
    for (const auto& a : arrays)
      for (std::size_t d = 0; d < a.ndim(); ++d)
        known |= a.dims[d] == dim || a.index[d].source == dim;
    if (!known) throw Error::config("shards." + dim, "no output dimension named '" + dim + "'");
  }
  for (const auto& [dim, size] : cfg.chunks) {
    bool known = dim == "batch_dim" && sel.tiling.has_value();
    for (const auto& a : arrays)
      for (std::size_t d = 0; d < a.ndim(); ++d)
        known |= a.dims[d] == dim || a.index[d].source == dim;
    if (!known) throw Error::config("chunks." + dim, "no output dimension named '" + dim + "'");
  }
}

}  // namespace

std::vector<ArrayPlan> build_arrays(const Dataset& ds, const Selection& sel, const Config& cfg) {
  const std::vector<VariableSpec> specs = requested_specs(ds, sel, cfg);
  std::vector<ArrayPlan> arrays;
  std::vector<std::string> coord_dims;
  add_spec_arrays(arrays, coord_dims, specs, ds, sel, cfg);
  // Without a list, every dimension coordinate xarray shows, also those no data variable uses.
  if (cfg.variables.empty())
    for (const auto& dim : ds.dims)
      if (std::find(coord_dims.begin(), coord_dims.end(), dim.name) == coord_dims.end())
        coord_dims.push_back(dim.name);
  for (const auto& d : coord_dims) {
    const Variable* c = ds.find(d);
    if (c && ds.is_dimension_coordinate(*c)) {
      arrays.push_back(make_array(sel, *c, cfg, true));
      check_array_name(arrays.back().name, "preprocessors (rename of '" + d + "')");
    }
  }
  keep_coordinates_the_store_holds(arrays, ds, sel);
  if (sel.tiling) apply_tiling(arrays, ds, sel, cfg);
  check_output_arrays(arrays, sel, cfg);
  return arrays;
}

}  // namespace zp
