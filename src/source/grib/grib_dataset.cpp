#include "source/grib/grib_dataset.hpp"

#include <eccodes.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#include "core/budget.hpp"
#include "core/error.hpp"

namespace zp {

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

const char* const kGlobalKeys[] = {"edition", "centre", "centreDescription", "subCentre"};
const char* const kDataKeys[] = {"paramId",   "dataType", "numberOfPoints", "typeOfLevel",
                                 "stepUnits", "stepType", "gridType"};
const char* const kCoordKeys[] = {"number",          "time",           "step", "level:float",
                                  "directionNumber", "frequencyNumber"};
const std::set<std::string> kGrids2d = {"rotated_ll", "rotated_gg",
                                        "lambert",    "lambert_azimuthal_equal_area",
                                        "albers",     "polar_stereographic"};

// cfgrib's COORD_ATTRS: what a coordinate named so gets over its generic attributes.
const ojson& coord_attrs() {
  static const ojson m = [] {
    const ojson seconds = {{"units", "seconds since 1970-01-01T00:00:00"},
                           {"calendar", "proleptic_gregorian"}};
    auto depth = ojson{{"units", "m"},
                       {"positive", "down"},
                       {"long_name", "soil depth"},
                       {"standard_name", "depth"}};
    auto pressure = [](const char* units, bool stored) {
      ojson p = {{"units", units}, {"positive", "down"}};
      if (stored) p["stored_direction"] = "decreasing";
      p["standard_name"] = "air_pressure";
      p["long_name"] = "pressure";
      return p;
    };
    auto timed = [&](const char* sn, const char* ln) {
      ojson t = seconds;
      t["standard_name"] = sn;
      t["long_name"] = ln;
      return t;
    };
    ojson c;
    c["latitude"] = {
        {"units", "degrees_north"}, {"standard_name", "latitude"}, {"long_name", "latitude"}};
    c["longitude"] = {
        {"units", "degrees_east"}, {"standard_name", "longitude"}, {"long_name", "longitude"}};
    c["depthBelowLand"] = depth;
    c["depthBelowLandLayer"] = depth;
    c["hybrid"] = {{"units", "1"},
                   {"positive", "down"},
                   {"long_name", "hybrid level"},
                   {"standard_name", "atmosphere_hybrid_sigma_pressure_coordinate"}};
    c["heightAboveGround"] = {{"units", "m"},
                              {"positive", "up"},
                              {"long_name", "height above the surface"},
                              {"standard_name", "height"}};
    c["isobaricInhPa"] = pressure("hPa", true);
    c["isobaricInPa"] = pressure("Pa", true);
    c["isobaricLayer"] = pressure("Pa", false);
    c["number"] = {{"units", "1"},
                   {"standard_name", "realization"},
                   {"long_name", "ensemble member numerical id"}};
    c["step"] = {{"units", "hours"},
                 {"standard_name", "forecast_period"},
                 {"long_name", "time since forecast_reference_time"}};
    c["time"] = timed("forecast_reference_time", "initial time of forecast");
    c["valid_time"] = timed("time", "time");
    return c;
  }();
  return m;
}

// The fields of one variable (or the whole index) and what they say.
struct Fields {
  const GribScan* scan;
  std::vector<std::size_t> ids;  // into scan->fields, file order

  std::size_t key_index(const std::string& key) const {
    const auto& k = scan->index_keys;
    const auto it = std::find(k.begin(), k.end(), key);
    if (it == k.end()) throw Error::internal("grib: no index key " + key);
    return static_cast<std::size_t>(it - k.begin());
  }
  const json& value(std::size_t id, std::size_t key) const { return scan->fields[id].keys[key]; }
  // The values of `key`, in order of first appearance (cfgrib's header_values).
  std::vector<json> distinct(const std::string& key) const {
    const std::size_t k = key_index(key);
    std::vector<json> out;
    std::set<json> seen;  // a file of 50,000 distinct times must not take N^2 comparisons
    for (std::size_t id : ids)
      if (seen.insert(value(id, k)).second) out.push_back(value(id, k));
    return out;
  }
};

json undef_as_text(const json& v) {
  return v.is_null() ? json("undef") : v;
}

std::string python_dict(const json& filter) {  // {'typeOfLevel': 'surface'}, as cfgrib prints it
  std::string s = "{";
  for (const auto& [k, v] : filter.items()) {
    if (s.size() > 1) s += ", ";
    s += "'" + k + "': " + (v.is_string() ? "'" + v.get<std::string>() + "'" : v.dump());
  }
  return s + "}";
}

// cfgrib's DatasetBuildError for `key`: every value it takes in the whole index, each with the
// filter_by_keys that selects it.
Error build_error(const Fields& all, const std::string& key, const json& filter,
                  const std::string& uri, const std::string& variable) {
  std::string msg = "cannot read the GRIB file as one dataset: key '" + key +
                    "' takes several values" + (variable.empty() ? "" : " in " + variable) +
                    " (cfgrib's DatasetBuildError); read one group with one of:";
  for (const json& v : all.distinct(key)) {
    json fbk = {{key, undef_as_text(v)}};
    if (filter.is_object()) fbk.update(filter);
    msg += "\n    filter_by_keys=" + python_dict(fbk);
  }
  return Error::source(uri, msg);
}

// enforce_unique_attributes: "GRIB_<key>" for each key of `keys` with one value.
ojson unique_attrs(const Fields& f, const Fields& all, const std::vector<std::string>& keys,
                   const json& filter, const std::string& uri, const std::string& variable) {
  ojson attrs = ojson::object();
  for (const std::string& key : keys) {
    const std::vector<json> values = f.distinct(key);
    if (values.size() > 1) throw build_error(all, key, filter, uri, variable);
    if (values.empty() || values[0].is_null()) continue;
    if (values[0] == "undef" || values[0] == "unknown") continue;
    attrs["GRIB_" + key] = ojson::parse(values[0].dump());
  }
  return attrs;
}

}  // namespace

namespace {

template <class T>
Bytes bytes_of(const std::vector<T>& v) {
  Bytes b(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(b.data(), v.data(), b.size());
  return b;
}

Variable held(const std::string& name, std::vector<std::string> dims, std::vector<int64_t> shape,
              const char* dtype, ojson attrs, Bytes data) {
  Variable v;
  v.name = name;
  v.dims = std::move(dims);
  v.shape = std::move(shape);
  v.dtype = DType::parse(dtype);
  v.attrs = std::move(attrs);
  v.missing_chunk_value = 0;
  v.origin = name;
  v.hold_whole(std::move(data));
  return v;
}

// A coordinate as cfgrib's build_variable_components makes it from an index key.
struct Coord {
  std::string name;
  std::vector<json> values;  // sorted as cfgrib sorts them
  Variable var;
};

ojson coord_attributes(const std::string& key, const std::string& name) {
  ojson a = {{"long_name", "original GRIB coordinate for key: " + key + "(" + name + ")"},
             {"units", "1"}};
  if (coord_attrs().contains(name)) a.update(coord_attrs()[name]);
  return a;
}

Variable coord_values(const std::string& name, const std::vector<json>& values, ojson attrs,
                      const std::string& where) {
  const bool ints = std::all_of(values.begin(), values.end(),
                                [](const json& v) { return v.is_number_integer(); });
  std::vector<std::string> dims;
  std::vector<int64_t> shape;
  if (values.size() > 1) {
    dims = {name};
    shape = {static_cast<int64_t>(values.size())};
  }
  if (ints) {
    std::vector<int64_t> x;
    for (const json& v : values) x.push_back(v.get<int64_t>());
    return held(name, dims, shape, "<i8", std::move(attrs), bytes_of(x));
  }
  std::vector<double> x;
  for (const json& v : values) {
    if (!v.is_number())
      throw Error::source(where, "coordinate '" + name +
                                     "' is undefined or not a number in some "
                                     "messages: " +
                                     v.dump());
    x.push_back(v.get<double>());
  }
  return held(name, dims, shape, "<f8", std::move(attrs), bytes_of(x));
}

// The coordinates of the index keys (number, time, step, level, ...) of one variable.
std::vector<Coord> header_coords(const Fields& f, const ojson& data_attrs,
                                 const std::string& where) {
  std::vector<Coord> out;
  for (const std::string key : kCoordKeys) {
    std::vector<json> values = f.distinct(key);
    if (values.empty() || (values.size() == 1 && values[0].is_null())) continue;
    const std::string orig = key.substr(0, key.find(':'));
    std::string name = orig;
    if (name == "level" && data_attrs.contains("GRIB_typeOfLevel"))
      name = data_attrs["GRIB_typeOfLevel"].get<std::string>();
    ojson attrs = coord_attributes(orig, name);
    for (const json& v : values)
      if (!v.is_number())
        throw Error::source(where, "key '" + orig +
                                       "' is undefined in some messages and "
                                       "defined in others");
    std::sort(values.begin(), values.end());
    if (attrs.value("stored_direction", "") == "decreasing")
      std::reverse(values.begin(), values.end());
    Variable var = coord_values(name, values, std::move(attrs), where);
    out.push_back({name, std::move(values), std::move(var)});
  }
  return out;
}

struct Geography {
  std::vector<std::string> dims;
  std::vector<int64_t> shape;
  std::vector<Variable> coords;
};

// cfgrib's build_geography_coordinates from the variable's first message.
Geography geography(const GribFirst& first) {
  Geography g;
  const auto& lat_attrs = coord_attrs()["latitude"];
  const auto& lon_attrs = coord_attrs()["longitude"];
  const auto n_lat = static_cast<int64_t>(first.latitudes.size());
  const auto n_lon = static_cast<int64_t>(first.longitudes.size());
  if (first.grid_type == "sh")
    throw Error::source(first.where, "spherical harmonics (gridType sh) are not read");
  if (first.grid_type == "regular_ll" || first.grid_type == "regular_gg") {
    if (n_lat != first.ny || n_lon != first.nx || first.ny * first.nx != first.points)
      throw Error::source(first.where,
                          "the grid's Ny x Nx is not its distinct latitudes and "
                          "longitudes or its numberOfPoints");
    g.dims = {"latitude", "longitude"};
    g.shape = {first.ny, first.nx};
    ojson la = lat_attrs;
    if (n_lat > 0 && first.latitudes.front() > first.latitudes.back())
      la["stored_direction"] = "decreasing";
    g.coords.push_back(
        held("latitude", {"latitude"}, {n_lat}, "<f8", la, bytes_of(first.latitudes)));
    g.coords.push_back(
        held("longitude", {"longitude"}, {n_lon}, "<f8", lon_attrs, bytes_of(first.longitudes)));
    return g;
  }
  const bool two_d = kGrids2d.count(first.grid_type) > 0;
  g.dims = two_d ? std::vector<std::string>{"y", "x"} : std::vector<std::string>{"values"};
  g.shape = two_d ? std::vector<int64_t>{first.ny, first.nx} : std::vector<int64_t>{first.points};
  const int64_t points = two_d ? first.ny * first.nx : first.points;
  if (points != first.points || points <= 0)
    throw Error::source(first.where, "the grid's Ny x Nx is not its numberOfPoints");
  if (n_lat == points && n_lon == points) {
    g.coords.push_back(
        held("latitude", g.dims, g.shape, "<f8", lat_attrs, bytes_of(first.latitudes)));
    g.coords.push_back(
        held("longitude", g.dims, g.shape, "<f8", lon_attrs, bytes_of(first.longitudes)));
  }
  return g;
}

// valid_time = time + step, in seconds, over the dimensions of those two.
Variable valid_time(const Coord& time, const Coord& step) {
  std::vector<std::string> dims;
  std::vector<int64_t> shape;
  for (const Coord* c : {&time, &step})
    if (c->values.size() > 1) {
      dims.push_back(c->name);
      shape.push_back(static_cast<int64_t>(c->values.size()));
    }
  std::vector<double> v;
  for (const json& t : time.values)
    for (const json& s : step.values)
      v.push_back(static_cast<double>(t.get<int64_t>()) + s.get<double>() * 3600.0);
  return held("valid_time", dims, shape, "<f8", coord_attrs()["valid_time"], bytes_of(v));
}

}  // namespace

namespace {

// cfgrib's encode_cf_first: CF attributes from the GRIB ones.
void encode_cf(ojson& attrs) {
  const json param = attrs.contains("GRIB_paramId") ? json(attrs["GRIB_paramId"]) : json("undef");
  attrs["long_name"] =
      "original GRIB paramId: " + (param.is_string() ? param.get<std::string>() : param.dump());
  attrs["units"] = "1";
  if (attrs.contains("GRIB_cfName")) attrs["standard_name"] = attrs["GRIB_cfName"];
  if (attrs.contains("GRIB_name")) attrs["long_name"] = attrs["GRIB_name"];
  if (attrs.contains("GRIB_units")) attrs["units"] = attrs["GRIB_units"];
}

std::string variable_name(const ojson& attrs, const json& param) {
  std::string name = attrs.contains("GRIB_shortName") && attrs["GRIB_shortName"].is_string()
                         ? attrs["GRIB_shortName"].get<std::string>()
                         : "paramId_" + param.dump();
  if (attrs.contains("GRIB_cfVarName") && attrs["GRIB_cfVarName"].is_string()) {
    const std::string cf = attrs["GRIB_cfVarName"];
    if (cf != "undef" && cf != "unknown") name = cf;
  }
  return name;
}

// Each message's chunk at its place along the header dimensions: a later message with other
// index values at the same place replaces an earlier one; one with the same values does not
// (cfgrib's field_ids_index keeps the first message of a header tuple, then fills in order).
void place_messages(const Fields& f, const std::vector<Coord>& header, Variable& v) {
  std::vector<std::size_t> keys;
  std::vector<std::map<std::string, int64_t>> position(header.size());
  for (std::size_t d = 0; d < header.size(); ++d) {
    static const std::map<std::string, std::string> kKeyOf = {
        {"number", "number"},
        {"time", "time"},
        {"step", "step"},
        {"directionNumber", "directionNumber"},
        {"frequencyNumber", "frequencyNumber"}};
    const auto it = kKeyOf.find(header[d].name);
    keys.push_back(f.key_index(it == kKeyOf.end() ? "level:float" : it->second));
    for (std::size_t i = 0; i < header[d].values.size(); ++i)
      position[d][header[d].values[i].dump()] = static_cast<int64_t>(i);
  }
  std::set<std::string> seen;
  for (std::size_t id : f.ids) {
    if (!seen.insert(json(f.scan->fields[id].keys).dump()).second) continue;
    std::vector<int64_t> chunk(v.ndim(), 0);
    for (std::size_t d = 0; d < header.size(); ++d)
      chunk[d] = position[d].at(f.value(id, keys[d]).dump());
    ChunkRef& ref = v.chunks[static_cast<std::size_t>(v.grid.linear_index(chunk))];
    const GribField& field = f.scan->fields[id];
    ref.kind = ChunkRef::Kind::Range;
    ref.file = field.file;
    ref.offset = field.offset;
    ref.length = field.length;
  }
}

struct Built {
  std::vector<Variable> coords;  // cfgrib's coord_vars, in its order
  Variable data;
};

Variable data_variable(const std::string& name, const Fields& f, const std::vector<Coord>& header,
                       const Geography& geo, ojson attrs) {
  Variable v;
  v.name = name;
  v.dtype = DType::parse("<f4");
  v.attrs = std::move(attrs);
  v.missing_chunk_value = "NaN";
  // As kerchunk's grib2 names it (its codec reads `var`), so `refs` can write the chain as it is.
  v.codecs = {CodecSpec{"grib", {{"id", "grib"}, {"var", name}, {"dtype", "float32"}}}};
  std::vector<int64_t> chunk;
  for (const Coord& c : header) {
    v.dims.push_back(c.name);
    v.shape.push_back(static_cast<int64_t>(c.values.size()));
    chunk.push_back(1);
  }
  v.dims.insert(v.dims.end(), geo.dims.begin(), geo.dims.end());
  v.shape.insert(v.shape.end(), geo.shape.begin(), geo.shape.end());
  chunk.insert(chunk.end(), geo.shape.begin(), geo.shape.end());
  v.grid = ChunkGrid::regular(v.shape, chunk, "GRIB variable '" + name + "'");
  v.chunks.assign(static_cast<std::size_t>(v.grid.num_chunks()), ChunkRef{});
  place_messages(f, header, v);
  return v;
}

Built build_variable(const Fields& f, const Fields& all, const GribFirst& first, const json& filter,
                     const std::string& uri) {
  const std::string where = first.where;
  ojson attrs = unique_attrs(f, all, {std::begin(kDataKeys), std::end(kDataKeys)}, filter, uri,
                             "the messages of paramId " + f.distinct("paramId")[0].dump());
  attrs.update(first.attrs);
  encode_cf(attrs);
  std::vector<Coord> coords = header_coords(f, attrs, where);
  std::vector<Coord> header;
  std::vector<int64_t> messages;
  for (const Coord& c : coords)
    if (c.values.size() > 1) {
      header.push_back(c);
      messages.push_back(static_cast<int64_t>(c.values.size()));
    }
  // Before valid_time (time x step values) or the manifest is allocated: distinct times and
  // steps in every message would ask for N^2 of each.
  budget::checked_product(messages, budget::kChunksPerArray, uri,
                          "messages in the grid of paramId " + f.distinct("paramId")[0].dump());
  const Geography geo = geography(first);
  Built b;
  for (const Coord& c : coords) b.coords.push_back(c.var);
  for (const Variable& g : geo.coords) b.coords.push_back(g);
  const auto find = [&](const char* n) {
    return std::find_if(coords.begin(), coords.end(), [&](const Coord& c) { return c.name == n; });
  };
  if (find("time") != coords.end() && find("step") != coords.end())
    b.coords.push_back(valid_time(*find("time"), *find("step")));
  std::string names;
  for (const Variable& c : b.coords) names += (names.empty() ? "" : " ") + c.name;
  attrs["coordinates"] = names;
  const std::string name = variable_name(attrs, f.distinct("paramId")[0]);
  b.data = data_variable(name, f, header, geo, std::move(attrs));
  return b;
}

}  // namespace

namespace {

bool same_variable(const Variable& a, const Variable& b) {
  const Bytes* x = a.held_whole();
  const Bytes* y = b.held_whole();
  return a.dims == b.dims && a.shape == b.shape && a.dtype == b.dtype && a.attrs == b.attrs && x &&
         y && *x == *y;
}

Error merge_error(const Built& b, const std::string& what, const json& param, const json& filter,
                  const std::string& uri) {
  json fbk = {{"paramId", param}};
  if (filter.is_object()) fbk.update(filter);
  return Error::source(
      uri, "variable '" + b.data.name + "' (paramId " + param.dump() + ") " + what +
               " (cfgrib skips it); read it alone with filter_by_keys=" + python_dict(fbk));
}

// cfgrib's dict_merge of a variable's coordinates, itself and its dimensions into the dataset.
void merge(Dataset& ds, Built b, const json& param, const json& filter, const std::string& uri) {
  for (const Variable& c : b.coords) {
    const Variable* had = ds.find(c.name);
    if (had && !same_variable(*had, c))
      throw merge_error(b, "has another coordinate '" + c.name + "' than the variables before it",
                        param, filter, uri);
  }
  if (ds.find(b.data.name))
    throw merge_error(b, "has the name of a variable before it", param, filter, uri);
  for (std::size_t d = 0; d < b.data.ndim(); ++d) {
    const Dimension* had = ds.find_dim(b.data.dims[d]);
    if (had && had->size != b.data.shape[d])
      throw merge_error(b, "has another size of dimension '" + b.data.dims[d] + "'", param, filter,
                        uri);
    if (!had) ds.dims.push_back({b.data.dims[d], b.data.shape[d], false});
  }
  for (Variable& c : b.coords)
    if (!ds.find(c.name)) ds.variables.push_back(std::move(c));
  ds.variables.push_back(std::move(b.data));
}

ojson global_attrs(const Fields& all, const json& filter, const std::string& uri) {
  ojson attrs =
      unique_attrs(all, all, {std::begin(kGlobalKeys), std::end(kGlobalKeys)}, filter, uri, "");
  attrs["Conventions"] = "CF-1.7";
  if (attrs.contains("GRIB_centreDescription"))
    attrs["institution"] = attrs["GRIB_centreDescription"];
  const json encoding = {{"source", uri},
                         {"filter_by_keys", filter.is_object() ? filter : json::object()},
                         {"encode_cf", {"parameter", "time", "geography", "vertical"}}};
  attrs["history"] = std::string("GRIB to CDM+CF via zarr-parallel/ecCodes-") +
                     std::to_string(codes_get_api_version()) + " with " + encoding.dump();
  return attrs;
}

}  // namespace

Dataset grib_dataset(const GribScan& scan, const json& filter_by_keys, const std::string& uri) {
  Dataset ds;
  ds.uri = uri;
  ds.engine = "grib";
  Fields all{&scan, {}};
  for (std::size_t i = 0; i < scan.fields.size(); ++i) all.ids.push_back(i);
  if (all.ids.empty())
    throw Error::source(
        uri, filter_by_keys.is_object() && !filter_by_keys.empty()
                 ? "no GRIB message matches filter_by_keys " + python_dict(filter_by_keys)
                 : "no GRIB message in the file");
  const std::size_t param_key = all.key_index("paramId");
  for (const json& param : all.distinct("paramId")) {
    Fields f{&scan, {}};
    for (std::size_t id : all.ids)
      if (all.value(id, param_key) == param) f.ids.push_back(id);
    const auto first = scan.firsts.find(param.dump());
    if (first == scan.firsts.end()) throw Error::internal("grib: no first message of a paramId");
    merge(ds, build_variable(f, all, first->second, filter_by_keys, uri), param, filter_by_keys,
          uri);
  }
  ds.attrs = global_attrs(all, filter_by_keys, uri);
  return ds;
}

}  // namespace zp
