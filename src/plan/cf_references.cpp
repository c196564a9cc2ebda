#include "plan/cf_references.hpp"

#include <algorithm>
#include <set>
#include <sstream>

namespace zp {

namespace {

// The CF attributes whose words name other variables.
constexpr const char* kReferenceAttrs[] = {"coordinates", "grid_mapping", "bounds",
                                           "ancillary_variables", "cell_measures"};

// Splits a CF reference attribute into words ("crs: lat lon" → "crs:", "lat", "lon").
std::vector<std::string> words_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// Coordinates that other variables' `coordinates` attributes name (xarray takes an attribute whose
// names all exist), on dimensions within v's, that v's own attribute does not name: ds[[v]] keeps
// them (GOES's scalar t for a variable that does not list it).
std::vector<std::string> borrowed_coordinates(const Dataset& ds, const Variable& v) {
  std::vector<std::string> own, out;
  if (v.attrs.contains("coordinates") && v.attrs["coordinates"].is_string())
    own = words_of(v.attrs["coordinates"].get<std::string>());
  for (const auto& u : ds.variables) {
    if (&u == &v || !u.attrs.contains("coordinates") || !u.attrs["coordinates"].is_string())
      continue;
    const std::vector<std::string> words = words_of(u.attrs["coordinates"].get<std::string>());
    if (!std::all_of(words.begin(), words.end(), [&](const auto& w) { return ds.find(w); }))
      continue;
    for (const auto& w : words) {
      const Variable* c = ds.find(w);
      const bool within = std::all_of(c->dims.begin(), c->dims.end(), [&](const auto& d) {
        return std::find(v.dims.begin(), v.dims.end(), d) != v.dims.end();
      });
      if (within && w != v.name && std::find(own.begin(), own.end(), w) == own.end() &&
          std::find(out.begin(), out.end(), w) == out.end())
        out.push_back(w);
    }
  }
  return out;
}

// A borrowed coordinate (borrowed_coordinates) the store holds but no array's `coordinates`
// names would read as a data variable: the arrays that borrowed it name it.
void name_borrowed_coordinates(std::vector<ArrayPlan>& arrays, const Dataset& ds,
                               const Selection& sel, const std::set<std::string>& in_store) {
  std::set<std::string> named;
  for (const auto& a : arrays)
    if (a.attrs.contains("coordinates") && a.attrs["coordinates"].is_string())
      for (const auto& w : words_of(a.attrs["coordinates"].get<std::string>())) named.insert(w);
  for (auto& a : arrays) {
    const Variable* v = a.coordinate ? nullptr : ds.find(a.source.name);
    if (!v) continue;
    std::string text = a.attrs.contains("coordinates") && a.attrs["coordinates"].is_string()
                           ? a.attrs["coordinates"].get<std::string>()
                           : "";
    for (const auto& w : borrowed_coordinates(ds, *v)) {
      const std::string out = sel.output_name_of_var(w);
      if (named.count(out) || !in_store.count(out) || out == a.name) continue;
      text += (text.empty() ? "" : " ") + out;
    }
    if (!text.empty()) a.attrs["coordinates"] = text;
  }
}

}  // namespace

// A renamed variable is renamed where other variables name it too, so that xarray still finds a
// renamed auxiliary coordinate through the `coordinates` attribute.
void rename_references(Attrs& attrs, const Selection& sel) {
  for (const char* key : kReferenceAttrs) {
    if (!attrs.contains(key) || !attrs[key].is_string()) continue;
    std::string out;
    bool renamed = false;
    for (std::string w : words_of(attrs[key].get<std::string>())) {
      const bool colon = w.size() > 1 && w.back() == ':';
      if (colon) w.pop_back();
      const std::string name = sel.output_name_of_var(w);
      renamed |= name != w;
      out += (out.empty() ? "" : " ") + name + (colon ? ":" : "");
    }
    if (renamed) attrs[key] = out;  // else as the source spells it (a trailing blank too)
  }
}

// Variables a data variable names as its auxiliary coordinates and grid mapping: what
// `ds[[name]]` keeps (coordinates whose dimensions it has) plus the grid mapping it points to.
std::vector<std::string> companions_of(const Dataset& ds, const Variable& v) {
  std::vector<std::string> out;
  auto add = [&](const std::string& name, bool need_dims_within) {
    // A dimension coordinate comes with its dimension; one on another dimension only as the grid
    // mapping (gridMET's crs(crs)), which ds[[name]] would leave out.
    const Variable* c = ds.find(name);
    if (!c || c->name == v.name || (need_dims_within && ds.is_dimension_coordinate(*c))) return;
    if (need_dims_within)
      for (const auto& d : c->dims)
        if (std::find(v.dims.begin(), v.dims.end(), d) == v.dims.end()) return;
    if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
  };
  if (v.attrs.contains("coordinates") && v.attrs["coordinates"].is_string())
    for (const auto& w : words_of(v.attrs["coordinates"].get<std::string>())) add(w, true);
  for (const auto& w : borrowed_coordinates(ds, v)) add(w, true);
  if (v.attrs.contains("grid_mapping") && v.attrs["grid_mapping"].is_string()) {
    // "crs", or "crs: lat lon": then only the names before a colon are grid mappings.
    const std::string gm = v.attrs["grid_mapping"].get<std::string>();
    const bool extended = gm.find(':') != std::string::npos;
    for (std::string w : words_of(gm)) {
      if (extended && (w.size() < 2 || w.back() != ':')) continue;
      if (w.back() == ':') w.pop_back();
      add(w, false);
    }
  }
  return out;
}

// xarray takes a `coordinates` attribute only when every variable it names exists. A subset that
// leaves some out (GOES's band_id, on a dimension Rad lacks) names only those the store holds, so
// the others (t) stay coordinates, as in ds[[name]]. Names the source lacks too stay.
void keep_coordinates_the_store_holds(std::vector<ArrayPlan>& arrays, const Dataset& ds,
                                      const Selection& sel) {
  std::set<std::string> in_source, in_store;
  for (const auto& v : ds.variables) in_source.insert(sel.output_name_of_var(v.name));
  for (const auto& u : ds.unsupported) in_source.insert(u.first);  // left out by `variables:`
  for (const auto& a : arrays) in_store.insert(a.name);
  for (auto& a : arrays) {
    if (!a.attrs.contains("coordinates") || !a.attrs["coordinates"].is_string()) continue;
    const std::vector<std::string> words = words_of(a.attrs["coordinates"].get<std::string>());
    std::string kept;
    bool dropped = false;
    for (const auto& w : words) {
      if (in_source.count(w) && !in_store.count(w)) {
        dropped = true;
        continue;
      }
      kept += (kept.empty() ? "" : " ") + w;
    }
    if (!dropped) continue;
    if (kept.empty())
      a.attrs.erase("coordinates");
    else
      a.attrs["coordinates"] = kept;
  }
  name_borrowed_coordinates(arrays, ds, sel, in_store);
}

}  // namespace zp
