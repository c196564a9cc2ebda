#include "source/zarr/zarr_v2_source.hpp"

#include "core/error.hpp"
#include "core/json_int.hpp"
#include "core/json_limits.hpp"
#include "core/json_nonfinite.hpp"
#include "source/describe_checks.hpp"
#include "source/source_json.hpp"
#include "source/zarr/object_arrays.hpp"
#include "store/file_reader.hpp"

namespace zp {

using json = nlohmann::json;

namespace {

// Objects a reference set points at, through the access of its data role.
struct Objects {
  SourceAccess& access;
  AccessRole role;
  Readable& reader(const std::string& location) { return access.reader(location, role); }
  uint64_t size_of(const std::string& location, const std::string& key) {
    const ObjectInfo i = reader(location).info(location);
    if (!i.exists)
      throw Error::source_missing(key, "referenced object '" + location + "' does not exist");
    return i.size;
  }
};

std::string text_of(const ReferenceSet& refs, const std::string& key, Objects& objects) {
  const auto ref = refs.get(key);
  if (!ref) return {};
  const Reference& r = *ref;
  Bytes b;
  if (r.data) {
    b = *r.data;
  } else {
    const uint64_t len = r.length >= 0
                             ? static_cast<uint64_t>(r.length)
                             : objects.size_of(r.path, key) - static_cast<uint64_t>(r.offset);
    check_document_size(r.path, len);
    b = objects.reader(r.path).read(r.path, static_cast<uint64_t>(r.offset), len);
  }
  return std::string(b.begin(), b.end());
}

// The array's grid from .zarray: zarr_format, order (checked), shape, chunks, dtype (|O: text
// objects, read whole). Returns the chunk shape.
std::vector<int64_t> zarray_grid(const json& zarray, Variable& v, bool& objects,
                                 const std::string& where) {
  if (json_int_or(zarray, "zarr_format", 2, where) != 2)
    throw Error::source(where, "only Zarr v2 metadata is supported");
  const json order = zarray.value("order", json("C"));
  if (order != "C" && order != "F") throw Error::source(where, "order must be \"C\" or \"F\"");
  v.shape = json_int_list(zarray.at("shape"), where + " shape", 0);
  const auto chunks = json_int_list(zarray.at("chunks"), where + " chunks", 1);
  if (chunks.size() != v.shape.size())
    throw Error::source(where, "chunks and shape differ in length");
  for (auto c : chunks)
    if (c <= 0) throw Error::source(where, "chunk sizes must be positive");
  for (auto s : v.shape)
    if (s < 0) throw Error::source(where, "shape must be non-negative");
  if (!zarray.at("dtype").is_string()) throw Error::source(where, "dtype must be a string");
  objects = zarray["dtype"] == "|O";
  try {
    v.dtype = objects ? DType{'S', 1, false} : DType::parse(zarray["dtype"].get<std::string>());
  } catch (const Error& e) {
    throw Error::source(where, e.what());
  }
  v.grid = ChunkGrid::regular(v.shape, chunks, where);  // within the budget, or refused
  return chunks;
}

// The codecs in encode order: Fortran order first (decoded last, into C order), the filters, the
// compressor. An object array's first filter is its object codec, returned (checked by the
// caller).
json zarray_codecs(const json& zarray, const std::vector<int64_t>& chunks, bool objects,
                   Variable& v, const std::string& where) {
  if (zarray.value("order", json("C")) == "F" && v.shape.size() > 1)
    v.codecs.push_back(CodecSpec{
        "order_f", json{{"id", "order_f"}, {"shape", chunks}, {"itemsize", v.dtype.size}}});
  json object_filter;
  if (zarray.contains("filters") && zarray["filters"].is_array())
    for (const auto& f : zarray["filters"]) {
      if (objects && object_filter.is_null()) {
        object_filter = f;
        continue;
      }
      v.codecs.push_back(codec_spec_from_json(f, where + " filters"));
    }
  if (zarray.contains("compressor") && !zarray["compressor"].is_null())
    v.codecs.push_back(codec_spec_from_json(zarray["compressor"], where + " compressor"));
  return object_filter;
}

// .zarray's description of the array; its errors name the array. Returns the object filter.
json read_zarray(const json& zarray, Variable& v, bool& objects, const std::string& where) {
  try {
    const auto chunks = zarray_grid(zarray, v, objects, where);
    return zarray_codecs(zarray, chunks, objects, v, where);
  } catch (const json::exception& e) {
    throw Error::source(where, std::string("bad .zarray: ") + e.what());
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::Config) throw Error::source(where, e.what());
    throw;
  }
}

// Attributes, and the dimensions from xarray's _ARRAY_DIMENSIONS.
void dims_and_attrs(Variable& v, const Attrs& zattrs, const std::string& where) {
  v.attrs = zattrs;
  if (!zattrs.contains("_ARRAY_DIMENSIONS") || !zattrs["_ARRAY_DIMENSIONS"].is_array() ||
      zattrs["_ARRAY_DIMENSIONS"].size() != v.shape.size())
    throw Error::source(where, "missing or wrong _ARRAY_DIMENSIONS attribute (xarray needs it)");
  for (const auto& d : zattrs["_ARRAY_DIMENSIONS"]) v.dims.push_back(d.get<std::string>());
  v.attrs.erase("_ARRAY_DIMENSIONS");
}

// fill_value (else _FillValue), and what never-written chunks read as. Text and bool fill values
// stay in Zarr's own form (base64 for bytes); checked here, not later.
void fill_values(Variable& v, const json& zarray, bool objects, const std::string& where) {
  const json raw_fill = zarray.value("fill_value", json(nullptr));
  const json fill = v.dtype.numeric() ? zarr_fill_value(raw_fill) : raw_fill;
  if (!objects) check_fill_fits(fill, v.dtype, where, "fill_value");
  v.fill_value = fill;
  if (v.fill_value.is_null() && v.attrs.contains("_FillValue"))
    v.fill_value = zarr_fill_value(nonfinite_numbers_to_markers(v.attrs["_FillValue"]));
  v.attrs.erase("_FillValue");
  v.missing_chunk_value = fill.is_null() ? json(0) : fill;
}

// The chunk reference of one chunk key: inline bytes, or a byte range of a file of ds.files.
void chunk_ref(ChunkRef& ref, const Reference& r, const std::string& key,
               std::map<std::string, uint32_t>& file_index, Dataset& ds, Objects& store) {
  if (r.data) {
    ref.kind = ChunkRef::Kind::Inline;
    ref.data = r.data;
    return;
  }
  auto [fit, added] = file_index.emplace(r.path, static_cast<uint32_t>(ds.files.size()));
  if (added) ds.files.push_back(r.path);
  ref.kind = ChunkRef::Kind::Range;
  ref.file = fit->second;
  ref.offset = static_cast<uint64_t>(r.offset);
  if (r.length >= 0) {
    ref.length = static_cast<uint64_t>(r.length);
    return;
  }
  const uint64_t size = store.size_of(r.path, key);
  if (size < static_cast<uint64_t>(r.offset))
    throw Error::source(key, "offset lies past the end of '" + r.path + "'");
  ref.length = size - static_cast<uint64_t>(r.offset);
}

// Files of the dataset by the generated references' path numbers (-1: not yet a file).
struct GeneratedFiles {
  const GeneratedReferences& generated;
  std::map<std::string, uint32_t>& file_index;
  Dataset& ds;
  std::vector<int64_t> file_of_path = std::vector<int64_t>(generated.paths().size(), -1);
  uint32_t operator()(uint32_t path) {
    int64_t& f = file_of_path[path];
    if (f < 0) {
      const std::string& p = generated.path(path);
      auto [it, added] = file_index.emplace(p, static_cast<uint32_t>(ds.files.size()));
      if (added) ds.files.push_back(p);
      f = it->second;
    }
    return static_cast<uint32_t>(f);
  }
};

// The chunk manifest: each chunk's key ("t/0.1", dimension_separator), missing when absent. A
// generated reference of known length is taken from its columns, without a Reference.
void chunk_manifest(Variable& v, const ReferenceSet& refs, const json& zarray,
                    std::map<std::string, uint32_t>& file_index, Dataset& ds, Objects& store) {
  const std::string sep = zarray.value("dimension_separator", ".");
  v.chunks.resize(static_cast<std::size_t>(v.grid.num_chunks()));
  GeneratedFiles files{refs.generated, file_index, ds};
  std::string key;
  for (int64_t idx = 0; idx < v.grid.num_chunks(); ++idx) {
    const std::vector<int64_t> c = v.grid.coords(idx);
    key = v.name + "/";
    for (std::size_t d = 0; d < c.size(); ++d) key += (d ? sep : "") + std::to_string(c[d]);
    if (c.empty()) key += "0";  // a 0-d array's one chunk
    ChunkRef& ref = v.chunks[static_cast<std::size_t>(idx)];
    if (const auto* row = refs.generated.find(key); row && row->length >= 0) {
      ref.kind = ChunkRef::Kind::Range;
      ref.file = files(row->path);
      ref.offset = static_cast<uint64_t>(row->offset);
      ref.length = static_cast<uint64_t>(row->length);
    } else if (const auto r = refs.get(key)) {
      chunk_ref(ref, *r, key, file_index, ds, store);
    }
  }
}

// Text objects, read whole now (object_arrays.hpp).
void read_objects(Variable& v, const json& object_filter, const Dataset& ds, Objects& store,
                  const std::string& where) {
  read_object_array_whole(
      v, object_filter,
      [&](int64_t idx) -> std::optional<Bytes> {
        const ChunkRef& ref = v.chunks[static_cast<std::size_t>(idx)];
        if (ref.kind == ChunkRef::Kind::Missing) return std::nullopt;
        if (ref.kind == ChunkRef::Kind::Inline) return *ref.data;
        return store.reader(ds.files[ref.file]).read(ds.files[ref.file], ref.offset, ref.length);
      },
      where);
  v.missing_chunk_value = nullptr;
}

// .zarray → grid and codecs → dimensions and attributes → fill values → chunk manifest.
Variable variable_from_zarray(const ReferenceSet& refs, const std::string& name, const json& zarray,
                              const Attrs& zattrs, std::map<std::string, uint32_t>& file_index,
                              Dataset& ds, Objects& store) {
  check_array_name(name, ds.uri);
  const std::string where = ds.uri + ", array '" + name + "'";
  Variable v;
  v.name = name;
  v.origin = ds.uri;
  bool objects = false;  // |O: text values, read whole below
  const json object_filter = read_zarray(zarray, v, objects, where);
  dims_and_attrs(v, zattrs, where);
  fill_values(v, zarray, objects, where);
  chunk_manifest(v, refs, zarray, file_index, ds, store);
  if (objects) read_objects(v, object_filter, ds, store, where);
  return v;
}

// Attributes from the text of a .zattrs key (`key` names it in errors): an object, or none.
Attrs zattrs_of(const std::string& text, const std::string& uri, const std::string& key) {
  if (json_too_deep(text))
    throw Error::source(uri, "'" + key + "' is nested more than " + std::to_string(kMaxJsonDepth) +
                                 " levels deep; refusing to read it");
  Attrs attrs = text.empty() ? Attrs::object()
                             : Attrs::parse(nonfinite_tokens_to_markers(text), nullptr, false);
  if (attrs.is_discarded() || !attrs.is_object())
    throw Error::source(uri, "'" + key + "' is not a JSON object");
  nonfinite_markers_to_numbers(attrs);
  return attrs;
}

// Why zarr-parallel cannot cache an array of this .zarray ("" when it can): object, complex,
// datetime and void dtypes but text objects.
std::string unsupported_dtype(const json& zarray) {
  if (!zarray.contains("dtype") || !zarray["dtype"].is_string()) return "";
  const std::string dt = zarray["dtype"].get<std::string>();
  const json filters = zarray.value("filters", json(nullptr));
  const bool text_objects = dt == "|O" && filters.is_array() && !filters.empty() &&
                            filters[0].is_object() && filters[0].contains("id") &&
                            filters[0]["id"].is_string() &&
                            is_text_object_codec(filters[0]["id"].get<std::string>());
  if (dt.size() >= 2 && std::string("OcMmV").find(dt[1]) != std::string::npos && !text_objects)
    return "of dtype '" + dt + "'" + (dt[1] == 'O' ? " without a text object codec" : "");
  return "";
}

// Adds v's dimensions to the dataset's; one name has one length across arrays.
void add_dims(const Variable& v, std::map<std::string, int64_t>& dim_sizes, Dataset& ds) {
  for (std::size_t d = 0; d < v.ndim(); ++d) {
    auto [it, added] = dim_sizes.emplace(v.dims[d], v.shape[d]);
    if (!added && it->second != v.shape[d])
      throw Error::source(ds.uri, "dimension '" + v.dims[d] + "' has length " +
                                      std::to_string(it->second) + " and " +
                                      std::to_string(v.shape[d]) + " (array '" + v.name + "')");
    if (added) ds.dims.push_back({v.dims[d], v.shape[d], false});
  }
}

// The array of one "<name>/.zarray" key of the root into the dataset, or into ds.unsupported.
void add_array(const ReferenceSet& refs, const std::string& key, const std::string& name,
               std::map<std::string, uint32_t>& file_index,
               std::map<std::string, int64_t>& dim_sizes, Dataset& ds, Objects& objects) {
  const json zarray =
      parse_json(nonfinite_tokens_to_markers(text_of(refs, key, objects)), ds.uri + ": " + key);
  const Attrs zattrs =
      zattrs_of(text_of(refs, name + "/.zattrs", objects), ds.uri, name + "/.zattrs");
  if (!zarray.is_object()) throw Error::source(ds.uri, "'" + key + "' is not a JSON object");
  if (const std::string why = unsupported_dtype(zarray); !why.empty()) {
    ds.unsupported.emplace_back(name, why);
    return;
  }
  Variable v = variable_from_zarray(refs, name, zarray, zattrs, file_index, ds, objects);
  add_dims(v, dim_sizes, ds);
  ds.variables.push_back(std::move(v));
}

// A root with no array zarr-parallel can cache is refused, but a root of groups (listed, as
// NetCDF's: Dataset::groups).
void check_has_arrays(const ReferenceSet& refs, const Dataset& ds) {
  bool has_groups = false;
  for (const auto& [key, ref] : refs.explicit_refs)  // metadata keys are never generated
    has_groups |= key.size() > 8 && key.compare(key.size() - 8, 8, "/.zgroup") == 0;
  if (ds.variables.empty() && (!ds.unsupported.empty() || !has_groups))
    throw Error::source(ds.uri, ds.unsupported.empty()
                                    ? "no arrays found (no '<name>/.zarray' keys)"
                                    : "no array zarr-parallel can cache (first: '" +
                                          ds.unsupported[0].first + "', " +
                                          ds.unsupported[0].second + ")");
}

// .zattrs → each root array ("<name>/.zarray") → the dimensions they share.
Dataset dataset_from_references_unchecked(const ReferenceSet& refs, const std::string& uri,
                                          const std::string& engine, Objects& meta_reader) {
  Dataset ds;
  ds.uri = uri;
  ds.engine = engine;
  ds.attrs = zattrs_of(text_of(refs, ".zattrs", meta_reader), uri, ".zattrs");
  std::map<std::string, uint32_t> file_index;
  std::map<std::string, int64_t> dim_sizes;
  const std::string suffix = "/.zarray";
  for (const auto& [key, ref] : refs.explicit_refs) {  // metadata keys are never generated
    if (key.size() <= suffix.size() ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string name = key.substr(0, key.size() - suffix.size());
    if (name.find('/') != std::string::npos) continue;  // nested groups are not read
    add_array(refs, key, name, file_index, dim_sizes, ds, meta_reader);
  }
  check_has_arrays(refs, ds);
  return ds;
}

}  // namespace

Dataset dataset_from_zarr_v2(const ReferenceSet& refs, const std::string& uri,
                             const std::string& engine, SourceAccess& access, AccessRole role) {
  Objects objects{access, role};
  return dataset_from_references_unchecked(refs, uri, engine, objects);
}

}  // namespace zp
