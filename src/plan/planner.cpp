#include "plan/planner.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

#include "core/error.hpp"
#include "core/units.hpp"
#include "plan/units.hpp"
#include "store/file_store.hpp"

namespace zp {

using json = nlohmann::json;

int64_t ArrayPlan::num_chunks() const {
  int64_t n = 1;
  for (std::size_t d = 0; d < ndim(); ++d) n *= chunks_along(d);
  return n;
}

std::size_t ArrayPlan::chunk_bytes() const {
  std::size_t n = static_cast<std::size_t>(conversion.out.size);
  for (auto c : chunks) n *= static_cast<std::size_t>(c);
  return n;
}

int64_t ArrayPlan::output_bytes() const {
  int64_t n = conversion.out.size;
  for (auto s : shape) n *= s;
  return n;
}

int64_t Region::num_chunks() const {
  int64_t n = 1;
  for (std::size_t d = 0; d < lo.size(); ++d) n *= hi[d] - lo[d];
  return n;
}

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

int64_t chunk_for_dim(const Config& cfg, const DimMap& m, int64_t source_chunk) {
  const int64_t n = std::max<int64_t>(m.count, 1);
  if (cfg.chunks_auto) return std::min(source_chunk, n);
  for (const auto& [dim, size] : cfg.chunks)
    if (dim == m.name || dim == m.source) {
      if (size == -1) return n;
      if (size == 0) return std::min(source_chunk, n);
      return std::min(size, n);
    }
  return std::min(source_chunk, n);  // unlisted dimension: keep the source chunking
}

// Whether the output chunk along `m` follows the source ('auto', or the dimension not listed).
bool auto_dim(const Config& cfg, const DimMap& m) {
  if (cfg.chunks_auto) return true;
  for (const auto& [dim, size] : cfg.chunks)
    if (dim == m.name || dim == m.source) return size == 0;
  return true;
}

// 'auto' means the source chunks. Only pathological ones (under kAutoChunkMin: a netCDF-3 record
// of a small grid, HDF5 files chunked for writing) would make a file per few kilobytes: those
// auto dimensions grow by whole source chunks, the first (record) dimension first, to about
// kAutoChunkTarget. An ERA5 chunk (24, 91, 180) of int16 (786 kB) stays as it is.
constexpr uint64_t kAutoChunkMin = 64u << 10;
constexpr uint64_t kAutoChunkTarget = 1u << 20;

void grow_tiny_auto_chunks(ArrayPlan& a, const Config& cfg) {
  auto bytes = [&] {
    uint64_t b = static_cast<uint64_t>(a.conversion.out.size);
    for (auto c : a.chunks) b *= static_cast<uint64_t>(c);
    return b;
  };
  for (std::size_t d = 0; d < a.ndim() && bytes() < kAutoChunkMin; ++d) {
    if (!auto_dim(cfg, a.index[d]) || a.chunks[d] >= a.shape[d]) continue;
    const uint64_t factor =
        std::max<uint64_t>(1, kAutoChunkTarget / std::max<uint64_t>(bytes(), 1));
    const uint64_t grown = static_cast<uint64_t>(a.chunks[d]) * factor;
    a.chunks[d] =
        static_cast<int64_t>(std::min<uint64_t>(grown, static_cast<uint64_t>(a.shape[d])));
  }
}

// The variable is written as xarray decodes it (a.conversion = cf_decoding): the attributes that
// said how to decode go, and the fill value is NaN, or the _FillValue as the unsigned view reads
// it.
void drop_decoded_encoding(ArrayPlan& a) {
  a.attrs.erase("_Unsigned");
  if (!a.conversion.decode) {
    a.fill_value = fill_as_viewed(a.source, a.source.fill_value);
    return;
  }
  for (const char* k : {"scale_factor", "add_offset", "missing_value"}) a.attrs.erase(k);
  a.fill_value = "NaN";
}

// astype/scale: the variable is written decoded (even under encoding: source), then the steps run
// on the decoded values; the fill value follows the final dtype.
void finish_value_steps(ArrayPlan& a, const std::vector<ValueStep>& steps, const std::string& key) {
  if (!a.source.dtype.numeric())
    throw Error::config(key,
                        "'" + a.source.name + "' is not numeric: astype and scale do not apply");
  if (!a.conversion.decode) {
    a.conversion = cf_decoding(a.source);
    drop_decoded_encoding(a);
  }
  a.attrs.erase("_FillValue");  // an unfit integer fill kept as an attribute no longer applies
  a.conversion.decoded = a.conversion.out;
  DType t = a.conversion.decoded;
  bool may_be_nan = t.kind == 'f';
  for (const auto& s : steps) {
    const DType r = step_result(t, s);
    if (r.kind != 'f' && t.kind == 'f' && may_be_nan) {
      // NaN has no integer value: it becomes the variable's _FillValue, which must fit.
      const nlohmann::json f = fill_as_viewed(a.source, a.source.fill_value);
      double fill = 0;
      bool fits = f.is_number();
      if (fits) {
        fill = f.get<double>();
        std::vector<unsigned char> probe(static_cast<std::size_t>(r.size));
        store_from_json(probe.data(), 0, r, f);
        fits = load_as_double(probe.data(), 0, r) == fill;
      }
      if (!fits)
        throw Error::config(key, "astype " + r.str() + " of '" + a.source.name +
                                     "' needs a _FillValue that " + r.str() +
                                     " holds, for its missing (NaN) values; the source has " +
                                     (f.is_null() ? std::string("none") : f.dump()));
      a.conversion.int_fill = fill;
      a.fill_value = f;
      may_be_nan = false;
    }
    if (r.kind == 'f' && t.kind != 'f') may_be_nan = false;
    t = r;
  }
  a.conversion.steps = steps;
  a.conversion.out = t;
  if (t.kind == 'f') a.fill_value = "NaN";
}

// Attributes that state the values' range: arithmetic on the values invalidates them.
void drop_range_attrs(Attrs& attrs) {
  for (const char* k :
       {"valid_range", "valid_min", "valid_max", "actual_range", "actual_min", "actual_max"})
    attrs.erase(k);
}

// `scale` (multiply, add, units): x * multiply + add. The values change meaning, so the range
// attributes go, and `units` becomes the given one or goes (K times 1.8 is no longer K).
ValueStep scale_step(const json& t, const std::string& key, Attrs& attrs) {
  ValueStep s;
  bool any = false;
  for (const auto& [k, v] : t.items()) {
    if (k == "type" || k == "units") continue;
    if (k != "multiply" && k != "add")
      throw Error::config(key + "." + k, "unknown field of scale (multiply, add, units)");
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      throw Error::config(key + "." + k, "expected a number, got " + v.dump());
    (k == "multiply" ? s.multiply : s.add) = v.get<double>();
    any = true;
  }
  if (!any) throw Error::config(key, "scale needs multiply and/or add");
  s.integer_args = (!t.contains("multiply") || t["multiply"].is_number_integer()) &&
                   (!t.contains("add") || t["add"].is_number_integer());
  drop_range_attrs(attrs);
  if (!t.contains("units") || t["units"].is_null()) {
    attrs.erase("units");
  } else {
    if (!t["units"].is_string())
      throw Error::config(key + ".units",
                          "expected a string (the scaled values' units, such as "
                          "degF), got " +
                              t["units"].dump());
    attrs["units"] = t["units"];
  }
  return s;
}

void apply_variable_transforms(ArrayPlan& a, const VariableSpec& spec) {
  std::vector<ValueStep> steps;
  std::string steps_key;
  for (std::size_t i = 0; i < spec.transforms.size(); ++i) {
    const json& t = spec.transforms[i];
    const std::string key = fmt::format("variables.{}[{}]", spec.name, i);
    const std::string type = t["type"].get<std::string>();
    if (type == "rename") {
      if (!t.contains("new_name") || !t["new_name"].is_string())
        throw Error::config(key + ".new_name", "required string field is missing");
      a.name = t["new_name"].get<std::string>();
    } else if (type == "attrs") {
      const json extra = t.contains("attrs") ? t["attrs"] : t;
      if (!extra.is_object()) throw Error::config(key + ".attrs", "expected a map of attributes");
      for (const auto& [k, v] : extra.items())
        if (k != "type") a.attrs[k] = v;
    } else if (type == "astype") {
      for (const auto& [k, v] : t.items())
        if (k != "type" && k != "dtype")
          throw Error::config(key + "." + k, "unknown field of astype (dtype)");
      if (!t.contains("dtype") || !t["dtype"].is_string())
        throw Error::config(key + ".dtype", "required string field is missing");
      ValueStep s;
      s.op = ValueStep::Op::AsType;
      s.to = numeric_dtype_named(t["dtype"].get<std::string>(), key + ".dtype");
      // A packed variable is unpacked for the cast: ranges in packed units no longer apply.
      if (cf_decoding(a.source).has_scale || cf_decoding(a.source).has_offset)
        drop_range_attrs(a.attrs);
      steps.push_back(s);
      if (steps_key.empty()) steps_key = key;
    } else if (type == "scale") {
      steps.push_back(scale_step(t, key, a.attrs));
      if (steps_key.empty()) steps_key = key;
    } else {
      throw Error::config(key + ".type", "unknown variable transform '" + type +
                                             "' (rename, attrs, astype, scale)");
    }
  }
  if (!steps.empty()) finish_value_steps(a, steps, steps_key);
}

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

// An integer array whose _FillValue is not one of its values (NCO writes 1e20 on int16): Zarr's
// fill_value cannot hold it, so it stays an attribute, as the source has it. xarray then reads the
// cache as it reads the source (it masks nothing, since no stored value equals it).
void keep_unfit_fill_as_attribute(ArrayPlan& a) {
  const DType t = a.conversion.out;
  const nlohmann::json& f = a.fill_value;
  if ((t.kind != 'i' && t.kind != 'u') || !f.is_number()) return;
  const double d = f.get<double>();
  const int bits = 8 * t.size;
  const double lo = t.kind == 'i' ? -std::ldexp(1.0, bits - 1) : 0.0;
  const double hi = t.kind == 'i' ? std::ldexp(1.0, bits - 1) - 1 : std::ldexp(1.0, bits) - 1;
  if (d >= lo && d <= hi && d == std::floor(d)) return;
  a.attrs["_FillValue"] = f;
  a.fill_value = nullptr;
}

// The stored chunk's codec chain: the object codec of a |O array, then the configured compressor.
std::vector<CodecSpec> output_chain(const std::string& object_codec, const Config& cfg,
                                    const std::string& array) {
  std::vector<CodecSpec> chain;
  if (!object_codec.empty())
    chain.push_back(CodecSpec{object_codec, nlohmann::json{{"id", object_codec}}});
  if (!cfg.compressor.is_null())
    chain.push_back(codec_spec_from_json(cfg.compressor, "compressor (array " + array + ")"));
  return chain;
}

// Zarr v3 sharding: the shard becomes the write chunk, the configured chunk its inner chunk.
void apply_shards(ArrayPlan& a, const Config& cfg) {
  std::vector<int64_t> shard = a.chunks;
  for (std::size_t d = 0; d < a.ndim(); ++d)
    for (const auto& [dim, size] : cfg.shards)
      if (a.dims[d] == dim || a.index[d].source == dim) {
        if (size % a.chunks[d] != 0)
          throw Error::config("shards." + dim,
                              fmt::format("{} is not a whole multiple of the chunk size {} of "
                                          "array '{}'",
                                          size, a.chunks[d], a.name));
        shard[d] = size;
      }
  a.inner_chunks = a.chunks;
  a.chunks = shard;
}

ArrayPlan make_array(const Selection& sel, const Variable& v, const Config& cfg, bool coordinate) {
  ArrayPlan a;
  a.name = sel.output_name_of_var(v.name);
  a.coordinate = coordinate;
  a.source = v;
  // A relabeled dimension coordinate (roll: auto) is written from its new labels, held inline.
  const auto relabel =
      v.ndim() == 1 && v.dims[0] == v.name ? sel.relabeled.find(v.name) : sel.relabeled.end();
  if (relabel != sel.relabeled.end()) {
    a.source.dtype = v.dtype.native();
    a.source.object_codec.clear();
    a.source.hold_whole(relabel->second.data);
  }
  for (std::size_t d = 0; d < v.ndim(); ++d) {
    const DimMap& m = sel.dim(v.dims[d]);
    a.dims.push_back(m.name);
    a.index.push_back(m);
    a.shape.push_back(m.count);
    a.chunks.push_back(coordinate ? std::max<int64_t>(m.count, 1)
                                  : chunk_for_dim(cfg, m, v.grid.chunk_shape[d]));
  }
  const bool decode = !coordinate && cfg.encoding == "decoded" && v.dtype.numeric();
  a.conversion = decode ? cf_decoding(v) : Conversion::identity(v.dtype);
  a.attrs = v.attrs;
  rename_references(a.attrs, sel);
  a.fill_value = v.fill_value;
  if (decode) drop_decoded_encoding(a);
  // xarray's to_zarr gives float arrays without a _FillValue the fill value NaN; masking NaN
  // changes no value, so readers see the same data either way.
  if (a.fill_value.is_null() && a.conversion.out.kind == 'f') a.fill_value = "NaN";
  keep_unfit_fill_as_attribute(a);
  if (!coordinate) grow_tiny_auto_chunks(a, cfg);
  if (!coordinate && !cfg.shards.empty() && !sel.tiling) apply_shards(a, cfg);
  a.codecs = output_chain(v.object_codec, cfg, a.name);
  a.per_chunk_units.assign(a.ndim(), false);
  return a;
}

// A coordinate computed by the coordinator (tiled labels), written from bytes held in the plan.
ArrayPlan inline_coordinate(const std::string& name, const std::vector<std::string>& dims,
                            const std::vector<int64_t>& shape, DType dtype, Bytes data, Attrs attrs,
                            const nlohmann::json& fill, const Config& cfg) {
  ArrayPlan a;
  a.name = name;
  a.coordinate = true;
  a.dims = dims;
  a.shape = shape;
  for (int64_t s : shape) a.chunks.push_back(std::max<int64_t>(s, 1));
  Variable& v = a.source;
  v.name = name;
  v.dims = dims;
  v.shape = shape;
  v.dtype = dtype;
  v.origin = "tiled labels";
  v.missing_chunk_value = 0;
  v.hold_whole(std::move(data));
  for (std::size_t d = 0; d < dims.size(); ++d)
    a.index.push_back(DimMap::linear(dims[d], dims[d], 0, shape[d], 1));
  a.conversion = Conversion::identity(dtype);
  a.attrs = std::move(attrs);
  a.fill_value = fill;
  a.codecs = output_chain("", cfg, a.name);
  a.per_chunk_units.assign(dims.size(), false);
  return a;
}

// tiled: data arrays get a stored layout (batch_dim first, one tile a chunk); the 1-D coordinates
// of tiled dimensions become D_coarse(batch_dim) and D(batch_dim, D_fine), as reset_index leaves
// them after xarray's stack.
struct TileGrid {
  Selection::Tiling t;          // tiled dimensions in batch order
  std::vector<int64_t> coarse;  // tiles along each tiled dimension
  int64_t batch = 1;            // tiles in all
  int64_t per_chunk = 1;        // tiles a stored chunk
  int tile_of(const std::string& dim) const {
    for (std::size_t i = 0; i < t.dims.size(); ++i)
      if (t.dims[i] == dim) return static_cast<int>(i);
    return -1;
  }
};

// batch_dim runs over the tiles in the data's dimension order (that of the first tiled data
// array; every tiled array must share it), the last tiled dimension fastest.
Selection::Tiling tiling_in_data_order(const std::vector<ArrayPlan>& arrays,
                                       const Selection::Tiling& tiling) {
  Selection::Tiling t = tiling;
  std::vector<std::string> order;
  for (const auto& a : arrays) {
    if (a.coordinate) continue;
    std::vector<std::string> mine;
    for (const auto& d : a.dims)
      if (std::find(t.dims.begin(), t.dims.end(), d) != t.dims.end()) mine.push_back(d);
    if (mine.size() != t.dims.size()) continue;
    if (order.empty()) order = mine;
    if (mine != order)
      throw Error::config("variables." + a.name, "'" + a.name +
                                                     "' orders the tiled dimensions "
                                                     "differently from the other variables");
  }
  if (!order.empty()) {
    Selection::Tiling sorted = t;
    for (std::size_t i = 0; i < order.size(); ++i) {
      const auto j = static_cast<std::size_t>(std::find(t.dims.begin(), t.dims.end(), order[i]) -
                                              t.dims.begin());
      sorted.dims[i] = t.dims[j];
      sorted.sizes[i] = t.sizes[j];
      sorted.original[i] = t.original[j];
      sorted.labels[i] = t.labels[j];
      sorted.label_dtypes[i] = t.label_dtypes[j];
    }
    t = std::move(sorted);
  }
  return t;
}

TileGrid tile_grid(const std::vector<ArrayPlan>& arrays, const Selection& sel, const Config& cfg) {
  TileGrid g;
  g.t = tiling_in_data_order(arrays, *sel.tiling);
  for (std::size_t i = 0; i < g.t.dims.size(); ++i) {
    g.coarse.push_back(sel.find_output(g.t.dims[i])->count / g.t.sizes[i]);
    g.batch *= g.coarse.back();
  }
  // Several tiles a chunk: consecutive batch indices, so k tiles along the last tiled dimension.
  for (const auto& [dim, size] : cfg.chunks)
    if (dim == "batch_dim") g.per_chunk = size < 0 ? g.coarse.back() : std::max<int64_t>(size, 1);
  if (g.coarse.back() % g.per_chunk != 0) {
    std::string ok;
    for (int64_t k = 1; k <= g.coarse.back(); ++k)
      if (g.coarse.back() % k == 0) ok += (ok.empty() ? "" : ", ") + std::to_string(k);
    throw Error::config(
        "chunks.batch_dim",
        fmt::format("{} tiles a chunk: a chunk holds consecutive tiles along '{}' "
                    "({} of them), so it must divide {} (one of {})",
                    g.per_chunk, g.t.dims.back(), g.coarse.back(), g.coarse.back(), ok));
  }
  return g;
}

// The stored layout of an array with `tiled` dimensions (n_tiled of them).
void tile_array(ArrayPlan& a, const TileGrid& g, const std::vector<bool>& tiled,
                std::size_t n_tiled, const std::string& coord_names) {
  if (n_tiled != g.t.dims.size() && g.per_chunk > 1 &&
      std::find(a.dims.begin(), a.dims.end(), g.t.dims.back()) == a.dims.end())
    throw Error::config(
        "chunks.batch_dim",
        "'" + a.name + "' lacks '" + g.t.dims.back() +
            "', along which several tiles "
            "a chunk are grouped: use batch_dim: 1, or leave it out under variables:");
  StoredLayout st;
  st.dims = {"batch_dim"};
  st.shape = {g.batch};
  st.chunks = {g.per_chunk};
  st.tiles_per_chunk = g.per_chunk;
  bool padded = false;
  for (std::size_t d = 0; d < a.ndim(); ++d) {
    if (tiled[d]) {
      const auto i = static_cast<std::size_t>(g.tile_of(a.dims[d]));
      a.chunks[d] = g.t.sizes[i] * (i + 1 == g.t.dims.size() ? g.per_chunk : 1);
      padded |= g.t.original[i] % g.t.sizes[i] != 0;
      st.dims.push_back(a.dims[d] + "_fine");
      st.shape.push_back(g.t.sizes[i]);
      st.chunks.push_back(g.t.sizes[i]);
    } else {
      st.dims.push_back(a.dims[d]);
      st.shape.push_back(a.shape[d]);
      st.chunks.push_back(a.chunks[d]);
    }
  }
  if (padded && g.t.pad && a.fill_value.is_null())
    throw Error::config("variables." + a.name,
                        "padding '" + a.name + "' (" + a.conversion.out.str() +
                            ") to whole tiles "
                            "needs a _FillValue; use encoding: decoded or boundary: trim");
  st.tiled = tiled;
  st.coarse = g.coarse;
  for (const auto& dim : g.t.dims) {
    const auto at = std::find(a.dims.begin(), a.dims.end(), dim);
    st.tile_dim.push_back(at == a.dims.end() ? -1 : static_cast<int>(at - a.dims.begin()));
  }
  a.stored = std::move(st);
  const std::string have = a.attrs.value("coordinates", std::string());
  a.attrs["coordinates"] = have.empty() ? coord_names.substr(1) : have + coord_names;
}

// D_coarse(batch_dim) and, where D has labels, D(batch_dim, D_fine) for each tiled dimension.
void add_tile_coordinates(std::vector<ArrayPlan>& out, const TileGrid& g, const Dataset& ds,
                          const Selection& sel, const Config& cfg) {
  for (std::size_t i = 0; i < g.t.dims.size(); ++i) {
    const std::string& dim = g.t.dims[i];
    int64_t later = 1;
    for (std::size_t j = i + 1; j < g.t.dims.size(); ++j) later *= g.coarse[j];
    Bytes idx(static_cast<std::size_t>(g.batch) * 8, 0);
    for (int64_t b = 0; b < g.batch; ++b) {
      const int64_t c = (b / later) % g.coarse[i];
      std::memcpy(idx.data() + 8 * b, &c, 8);
    }
    out.push_back(inline_coordinate(dim + "_coarse", {"batch_dim"}, {g.batch}, DType{'i', 8, false},
                                    std::move(idx), Attrs::object(), nullptr, cfg));
    if (g.t.labels[i].empty()) continue;
    const DType lt = g.t.label_dtypes[i];
    const int64_t n = g.t.sizes[i];
    Bytes lab(static_cast<std::size_t>(g.batch * n * lt.size), 0);
    for (int64_t b = 0; b < g.batch; ++b)
      for (int64_t f = 0; f < n; ++f) {
        const auto at = static_cast<std::size_t>(((b / later) % g.coarse[i]) * n + f);
        const double x = at < g.t.labels[i].size() ? g.t.labels[i][at] : std::nan("");
        store_from_json(lab.data(), static_cast<std::size_t>(b * n + f), lt,
                        std::isnan(x) ? nlohmann::json("NaN") : nlohmann::json(x));
      }
    Attrs attrs = Attrs::object();
    const DimMap* m = sel.find_output(dim);
    if (const Variable* cv = ds.find(m->source)) {
      attrs = cv->attrs;
      rename_references(attrs, sel);
      // The labels are the decoded values: what said how to decode them no longer applies.
      for (const char* k : {"scale_factor", "add_offset", "missing_value", "_Unsigned"})
        attrs.erase(k);
    }
    out.push_back(inline_coordinate(dim, {"batch_dim", dim + "_fine"}, {g.batch, n}, lt,
                                    std::move(lab), std::move(attrs), "NaN", cfg));
  }
}

void apply_tiling(std::vector<ArrayPlan>& arrays, const Dataset& ds, const Selection& sel,
                  const Config& cfg) {
  const TileGrid g = tile_grid(arrays, sel, cfg);
  std::string coord_names;
  for (const auto& d : g.t.dims) coord_names += " " + d + " " + d + "_coarse";
  std::vector<ArrayPlan> out;
  for (auto& a : arrays) {
    if (a.coordinate && a.ndim() == 1 && g.tile_of(a.dims[0]) >= 0) continue;  // replaced below
    std::vector<bool> tiled(a.ndim(), false);
    std::size_t n_tiled = 0;
    for (std::size_t d = 0; d < a.ndim(); ++d)
      n_tiled += (tiled[d] = g.tile_of(a.dims[d]) >= 0) ? 1 : 0;
    if (n_tiled > 0) tile_array(a, g, tiled, n_tiled, coord_names);
    out.push_back(std::move(a));
  }
  add_tile_coordinates(out, g, ds, sel, cfg);
  arrays = std::move(out);
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

}  // namespace

namespace {

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

const Conversion& ArrayPlan::conversion_of(const ChunkRef& ref) const {
  if (file_conversions.empty() || ref.kind == ChunkRef::Kind::Missing) return conversion;
  const Conversion* c = &conversion;
  for (const auto& fc : file_conversions)
    if (fc.first_file <= ref.file) c = &fc.conversion;
  return *c;
}

std::string ArrayPlan::object_codec() const {
  for (const auto& c : codecs)
    if (c.id == "vlen-utf8" || c.id == "vlen-bytes") return c.id;
  return "";
}

std::vector<CodecSpec> ArrayPlan::bytes_codecs() const {
  std::vector<CodecSpec> out;
  for (const auto& c : codecs)
    if (codec_kind(c.id) == CodecKind::BytesToBytes) out.push_back(c);
  return out;
}

bool Plan::reads_remote() const {
  for (const auto& f : files)
    if (is_remote(f)) return true;
  return false;
}

uint64_t predicted_peak(const ArrayPlan& a, int threads, bool remote) {
  uint64_t unit_chunks = 1;
  for (std::size_t d = 0; d < a.ndim(); ++d) {
    const DimUnits u = dim_units(a, d, a.per_chunk_units[d]);
    int64_t longest = 0;
    for (int64_t i = 0; i < u.count(); ++i)
      longest = std::max(longest, u.bounds[i + 1] - u.bounds[i]);
    unit_chunks *= static_cast<uint64_t>(longest);
  }
  uint64_t max_stored = 0;
  for (std::size_t i = 0; i < a.source.chunks.size(); ++i)
    max_stored = std::max(max_stored, stored_bytes(a.source, static_cast<int64_t>(i)));
  const uint64_t out = a.chunk_bytes();
  // Per thread in flight: one decoded and one stored source chunk, one encoded output chunk.
  const uint64_t per_thread = a.source.chunk_bytes() + max_stored + out + out / 16 + 64;
  const uint64_t fetched = remote ? kRemoteBatchBytes + max_stored : 0;
  return kWorkerBaseBytes + unit_chunks * out + static_cast<uint64_t>(threads) * per_thread +
         fetched;
}

namespace {

// Chooses per-dimension units so the predicted peak fits; breaks the longest units first.
void fit_units(ArrayPlan& a, const PlanOptions& opt, bool remote) {
  while (predicted_peak(a, opt.threads_per_worker, remote) >
         static_cast<uint64_t>(opt.memory_limit)) {
    int best = -1;
    int64_t best_len = 1;
    for (std::size_t d = 0; d < a.ndim(); ++d) {
      if (a.per_chunk_units[d]) continue;
      const DimUnits u = dim_units(a, d, false);
      int64_t longest = 0;
      for (int64_t i = 0; i < u.count(); ++i)
        longest = std::max(longest, u.bounds[i + 1] - u.bounds[i]);
      if (longest > best_len) best = static_cast<int>(d), best_len = longest;
    }
    if (best < 0) {
      throw Error::config(
          "memory_limit",
          fmt::format("{} is too small for array '{}': one output chunk with {} "
                      "thread(s) needs {}; raise memory_limit or use smaller chunks",
                      format_bytes(static_cast<double>(opt.memory_limit)), a.name,
                      opt.threads_per_worker,
                      format_bytes(
                          static_cast<double>(predicted_peak(a, opt.threads_per_worker, remote)))));
    }
    a.per_chunk_units[static_cast<std::size_t>(best)] = true;
  }
}

// How many times units inside [unit_lo, unit_hi) along one dimension touch each source chunk.
std::map<int64_t, int64_t> touches(const DimUnits& u, int64_t unit_lo, int64_t unit_hi) {
  std::map<int64_t, int64_t> t;
  for (int64_t i = unit_lo; i < unit_hi; ++i) {
    std::set<int64_t> read;
    for (int64_t k = u.bounds[i]; k < u.bounds[i + 1]; ++k)
      read.insert(u.source_chunks[static_cast<std::size_t>(k)].begin(),
                  u.source_chunks[static_cast<std::size_t>(k)].end());
    for (int64_t s : read) ++t[s];
  }
  return t;
}

// Σ stored bytes × read count over the source chunks that units [lo, hi) per dimension read.
uint64_t read_bytes(const ArrayPlan& a, const std::vector<DimUnits>& units,
                    const std::vector<int64_t>& unit_lo, const std::vector<int64_t>& unit_hi,
                    bool count_rereads) {
  const std::size_t nd = a.ndim();
  std::vector<std::vector<std::pair<int64_t, int64_t>>> t(nd);
  for (std::size_t d = 0; d < nd; ++d)
    for (const auto& [s, n] : touches(units[d], unit_lo[d], unit_hi[d])) t[d].emplace_back(s, n);
  uint64_t total = 0;
  for (std::size_t d = 0; d < nd; ++d)
    if (t[d].empty()) return 0;  // padding only
  std::vector<std::size_t> pos(nd, 0);
  std::vector<int64_t> c(nd);
  for (;;) {
    int64_t mult = 1;
    for (std::size_t d = 0; d < nd; ++d) {
      c[d] = t[d][pos[d]].first;
      mult *= t[d][pos[d]].second;
    }
    total += stored_bytes(a.source, a.source.grid.linear_index(c)) *
             static_cast<uint64_t>(count_rereads ? mult : 1);
    std::size_t d = nd;
    while (d > 0 && ++pos[d - 1] == t[d - 1].size()) pos[--d] = 0;
    if (d == 0) return total;
  }
}

// Splits n units into `parts` groups of near-equal size; returns group starts plus n.
std::vector<int64_t> even_split(int64_t n, int64_t parts) {
  std::vector<int64_t> s;
  for (int64_t i = 0; i <= parts; ++i) s.push_back(i * n / parts);
  s.erase(std::unique(s.begin(), s.end()), s.end());
  return s;
}

}  // namespace

void plan_jobs(Plan& plan, const PlanOptions& opt) {
  plan.jobs.clear();
  plan.summary = PlanSummary{};
  uint64_t total_out = 0;
  for (const auto& a : plan.arrays)
    if (!a.coordinate) total_out += static_cast<uint64_t>(a.output_bytes());
  const uint64_t job_budget = static_cast<uint64_t>(
      std::max<int64_t>(opt.memory_limit - static_cast<int64_t>(kWorkerBaseBytes), 1));

  for (std::size_t ai = 0; ai < plan.arrays.size(); ++ai) {
    ArrayPlan& a = plan.arrays[ai];
    if (a.coordinate || a.num_chunks() == 0) continue;  // an empty array has metadata only
    a.per_chunk_units.assign(a.ndim(), false);
    fit_units(a, opt, plan.reads_remote());
    plan.summary.peak_memory = std::max(
        plan.summary.peak_memory, predicted_peak(a, opt.threads_per_worker, plan.reads_remote()));
    std::vector<DimUnits> units;
    for (std::size_t d = 0; d < a.ndim(); ++d)
      units.push_back(dim_units(a, d, a.per_chunk_units[d]));

    const double share =
        total_out ? static_cast<double>(a.output_bytes()) / static_cast<double>(total_out) : 1.0;
    int64_t target;
    if (opt.num_jobs > 0) {
      target = std::max<int64_t>(1, std::llround(static_cast<double>(opt.num_jobs) * share));
    } else {
      const int64_t by_memory = static_cast<int64_t>(
          (static_cast<uint64_t>(a.output_bytes()) + job_budget - 1) / job_budget);
      const int64_t by_workers = static_cast<int64_t>(std::ceil(opt.workers * share - 1e-9));
      target = std::max<int64_t>({1, by_memory, by_workers});
      // A whole number of rounds: 3 equal jobs on 2 workers take as long as 4.
      if (by_memory > by_workers && opt.workers > 1)
        target = (target + opt.workers - 1) / opt.workers * opt.workers;
    }
    // Split along the first dimensions first: with time first, jobs read different files.
    std::vector<std::vector<int64_t>> groups(a.ndim());
    int64_t jobs = 1;
    for (std::size_t d = 0; d < a.ndim(); ++d) {
      const int64_t want = std::max<int64_t>(1, (target + jobs - 1) / jobs);
      groups[d] = even_split(units[d].count(), std::min(units[d].count(), want));
      jobs *= static_cast<int64_t>(groups[d].size()) - 1;
    }
    std::vector<std::size_t> pos(a.ndim(), 0);
    for (;;) {
      Job job;
      job.id = static_cast<int64_t>(plan.jobs.size());
      job.array = static_cast<int>(ai);
      std::vector<int64_t> ulo(a.ndim()), uhi(a.ndim());
      for (std::size_t d = 0; d < a.ndim(); ++d) {
        ulo[d] = groups[d][pos[d]];
        uhi[d] = groups[d][pos[d] + 1];
        job.region.lo.push_back(units[d].bounds[static_cast<std::size_t>(ulo[d])]);
        job.region.hi.push_back(units[d].bounds[static_cast<std::size_t>(uhi[d])]);
      }
      job.source_chunks = source_chunks_of(a, job.region);
      job.read_bytes = read_bytes(a, units, ulo, uhi, true);
      job.output_bytes = static_cast<uint64_t>(job.region.num_chunks()) * a.chunk_bytes();
      plan.summary.read_bytes += job.read_bytes;
      plan.jobs.push_back(std::move(job));
      std::size_t d = a.ndim();
      while (d > 0 && ++pos[d - 1] + 1 == groups[d - 1].size()) pos[--d] = 0;
      if (d == 0) break;
    }
    std::vector<int64_t> all_lo(a.ndim(), 0), all_hi(a.ndim());
    for (std::size_t d = 0; d < a.ndim(); ++d) all_hi[d] = units[d].count();
    plan.summary.needed_bytes += read_bytes(a, units, all_lo, all_hi, false);
    plan.summary.output_bytes += static_cast<uint64_t>(a.output_bytes());
    plan.summary.output_chunks += a.num_chunks();
    Region all;
    all.lo.assign(a.ndim(), 0);
    for (std::size_t d = 0; d < a.ndim(); ++d) all.hi.push_back(a.chunks_along(d));
    plan.summary.source_chunks += static_cast<int64_t>(source_chunks_of(a, all).size());
  }
  plan.summary.read_amplification = plan.summary.needed_bytes
                                        ? static_cast<double>(plan.summary.read_bytes) /
                                              static_cast<double>(plan.summary.needed_bytes)
                                        : 1.0;
}

PlanOptions plan_options(const Config& cfg, int cores) {
  PlanOptions o;
  o.memory_limit = cfg.memory_limit;
  o.num_jobs = cfg.num_jobs;
  cores = std::max(cores, 1);
  if (cfg.deploy_mode == "series") {
    o.workers = 1;
    o.threads_per_worker = cores;
  } else {
    o.workers = cfg.simultaneous_worker_limit;
    // Local workers share this machine's cores; on a cluster each worker has its own node slot,
    // but we plan for one core each unless the machine says more.
    o.threads_per_worker = cfg.deploy_mode == "local" ? std::max(1, cores / o.workers) : 1;
  }
  if (cfg.threads_per_worker > 0) o.threads_per_worker = cfg.threads_per_worker;
  return o;
}

namespace {

std::string describe_encoding(const std::string& file, const Attrs& attrs,
                              const nlohmann::json& fill) {
  std::string out;
  for (const char* k : Variable::kDecodingAttrs)
    if (attrs.contains(k)) out += std::string(out.empty() ? "" : ", ") + k + " " + attrs[k].dump();
  if (!fill.is_null()) out += (out.empty() ? "" : ", ") + ("_FillValue " + fill.dump());
  return std::filesystem::path(file).filename().string() + ": " +
         (out.empty() ? "no scale_factor, add_offset or fill value" : out);
}

// Files packed differently (Variable::encoding_runs) decode each with their own scale_factor,
// add_offset and fill values, as xarray decodes each file before joining them: one conversion per
// run, all to the same dtype. Their integers have no common packing, so `encoding: source`, which
// keeps the integers, is refused.
void apply_encoding_runs(ArrayPlan& a, const std::vector<std::string>& files, bool decoded) {
  const Variable& v = a.source;
  if (v.encoding_runs.empty()) return;
  const auto file = [&](uint32_t i) { return i < files.size() ? files[i] : v.origin; };
  const std::string first = describe_encoding(file(0), v.attrs, v.fill_value);
  const auto& r0 = v.encoding_runs[0];
  const std::string other = describe_encoding(file(r0.first_file), r0.attrs, r0.fill_value);
  const std::string what = "variable '" + v.name + "': its files encode it differently (" + first;
  if (a.coordinate || !(decoded || a.conversion.decode))
    throw Error::config("encoding",
                        what + "; " + other + "); " +
                            (a.coordinate ? std::string("a coordinate is kept as stored")
                                          : "encoding: source keeps the stored "
                                            "integers, which have no common "
                                            "packing: use encoding: decoded, which "
                                            "writes the values xarray decodes from "
                                            "each file"));
  for (const auto& run : v.encoding_runs) {
    const Conversion d = cf_decoding(v.decoded_as(run));
    const DType base = a.conversion.steps.empty() ? a.conversion.out : a.conversion.decoded;
    if (!(d.out == base))
      throw Error::config("encoding",
                          what + "; " +
                              describe_encoding(file(run.first_file), run.attrs, run.fill_value) +
                              "), and they decode to different types");
    ArrayPlan::FileConversion fc{run.first_file, a.conversion};
    fc.conversion.decode = d.decode;
    fc.conversion.fills = d.fills;
    fc.conversion.has_scale = d.has_scale;
    fc.conversion.has_offset = d.has_offset;
    fc.conversion.scale = d.scale;
    fc.conversion.offset = d.offset;
    a.file_conversions.push_back(std::move(fc));
  }
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
  if (sel.tiling) {
    // What it takes to untile: tile sizes, boundary, the lengths before padding or trimming.
    nlohmann::ordered_json sizes = nlohmann::ordered_json::object(), original = sizes;
    for (std::size_t i = 0; i < sel.tiling->dims.size(); ++i) {
      sizes[sel.tiling->dims[i]] = sel.tiling->sizes[i];
      original[sel.tiling->dims[i]] = sel.tiling->original[i];
    }
    plan.global_attrs["tiler_tile_sizes"] = sizes;
    plan.global_attrs["tiler_boundary"] = sel.tiling->pad ? "pad" : "trim";
    plan.global_attrs["tiler_original_sizes"] = original;
    plan.global_attrs["tiler_batch_dim"] = "batch_dim";
  }
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
