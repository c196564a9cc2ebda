#include "source/kerchunk/kerchunk_source.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "core/budget.hpp"
#include "core/error.hpp"
#include "core/json_int.hpp"
#include "core/json_limits.hpp"
#include "core/json_nonfinite.hpp"
#include "source/kerchunk/kerchunk_template.hpp"
#include "source/zarr/object_arrays.hpp"
#include "source/zarr/zarr_v3_source.hpp"
#include "store/file_reader.hpp"

namespace zp {

using json = nlohmann::json;

namespace {

// Where chunk URLs resolve: the reference file's folder or URL prefix, and fsspec's
// remote_protocol for paths written without a scheme.
struct Base {
  std::string prefix;
  std::string remote_protocol;
  bool local_allowed = true;  // false: the set came from a remote location (the origin rule)
  std::string where;          // the reference set, for errors
};

std::string resolve_url(const std::string& url, const Base& base, const std::string& key) {
  if (url.empty() || url == "file://") throw Error::source(key, "empty path in reference");
  std::string resolved;
  try {
    resolved = resolve_location(url, base.prefix, base.remote_protocol);
  } catch (const Error& e) {
    throw Error::source(key, e.what());
  }
  if (!base.local_allowed && !is_remote(resolved))
    throw Error::source(base.where + ", reference '" + key + "'",
                        "names the local file '" + url +
                            "', but the reference set was read from a remote location; a remote "
                            "reference set may only reference remote objects (set "
                            "allow_local_references: true if you trust it)");
  return resolved;
}

Reference parse_ref(const json& v, const std::string& key, const Base& base,
                    const std::map<std::string, std::string>& templates) {
  Reference r;
  if (v.is_string()) {
    const std::string s = v.get<std::string>();
    r.data = std::make_shared<Bytes>(s.rfind("base64:", 0) == 0 ? decode_base64(s.substr(7), key)
                                                                : Bytes(s.begin(), s.end()));
    return r;
  }
  if (!v.is_array() || (v.size() != 1 && v.size() != 3) || !v[0].is_string())
    throw Error::source(key, "reference must be a string, [url] or [url, offset, length]");
  r.path = resolve_url(render_template(v[0].get<std::string>(), templates, {}, key), base, key);
  if (v.size() == 3) {
    if (!v[1].is_number_integer() || !v[2].is_number_integer() || v[1].get<int64_t>() < 0 ||
        v[2].get<int64_t>() < 0)
      throw Error::source(key, "offset and length must be non-negative integers");
    r.offset = v[1].get<int64_t>();
    r.length = v[2].get<int64_t>();
  }
  return r;
}

// Expands one "gen" entry: the cartesian product of its dimensions.

void expand_gen(const json& g, ReferenceSet& refs, const Base& base,
                const std::map<std::string, std::string>& templates, int64_t& budget) {
  const std::string where = "gen entry " + g.dump().substr(0, 80);
  if (!g.is_object() || !g.contains("key") || !g.contains("url") || !g.contains("dimensions"))
    throw Error::source(where, "needs key, url and dimensions");
  std::vector<std::pair<std::string, std::vector<int64_t>>> dims;
  // The number of references is counted before any is made: a few bytes of "gen" can ask for
  // more than any machine holds.
  if (!g["dimensions"].is_object()) throw Error::source(where, "dimensions must be a map");
  int64_t total = 1;
  for (const auto& [name, spec] : g["dimensions"].items()) {
    int64_t n = 0;
    if (spec.is_array()) {
      n = static_cast<int64_t>(spec.size());
    } else if (spec.is_object()) {
      const int64_t start = json_int_or(spec, "start", 0, where, 0, INT32_MAX);
      const int64_t stop =
          json_int(spec.contains("stop") ? spec["stop"] : json(), where + " stop", 0, INT32_MAX);
      const int64_t step = json_int_or(spec, "step", 1, where, 1, INT32_MAX);
      n = stop > start ? (stop - start + step - 1) / step : 0;
    }
    if (n > 0 && total > budget::kGeneratedReferences / n)
      throw Error::source(where, "expands to more than " +
                                     std::to_string(budget::kGeneratedReferences) +
                                     " references; refusing to expand it");
    total *= std::max<int64_t>(n, 1);
  }
  budget -= total;
  if (budget < 0)
    throw Error::source(where, "the gen entries expand to more than " +
                                   std::to_string(budget::kGeneratedReferences) +
                                   " references in all; refusing to expand them");
  for (const auto& [name, spec] : g["dimensions"].items()) {
    std::vector<int64_t> values;
    if (spec.is_array()) {
      for (const auto& x : spec) values.push_back(json_int(x, where + " dimension " + name));
    } else if (spec.is_object()) {
      const int64_t start = json_int_or(spec, "start", 0, where, 0, INT32_MAX);
      const int64_t stop =
          json_int(spec.contains("stop") ? spec["stop"] : json(), where + " stop", 0, INT32_MAX);
      const int64_t step = json_int_or(spec, "step", 1, where, 1, INT32_MAX);
      for (int64_t x = start; x < stop; x += step) values.push_back(x);
    } else {
      throw Error::source(where, "dimension '" + name + "' must be a list or {start, stop, step}");
    }
    dims.emplace_back(name, std::move(values));
  }
  std::map<std::string, int64_t> vars;
  std::vector<std::size_t> pos(dims.size(), 0);
  for (const auto& d : dims)
    if (d.second.empty()) return;
  for (;;) {
    for (std::size_t i = 0; i < dims.size(); ++i) vars[dims[i].first] = dims[i].second[pos[i]];
    auto text = [&](const char* field) {
      const json& f = g[field];
      return render_template(f.is_string() ? f.get<std::string>() : f.dump(), templates, vars,
                             where);
    };
    const std::string key = text("key");
    Reference r;
    r.path = resolve_url(text("url"), base, key);
    auto number = [&](const char* field) {
      const std::string t = text(field);
      std::size_t pos = 0;
      long long v = -1;
      try {
        v = std::stoll(t, &pos);
      } catch (const std::exception&) {
        pos = 0;
      }
      if (pos != t.size() || v < 0)
        throw Error::source(key, std::string(field) + " '" + t + "' is not a non-negative integer");
      return static_cast<int64_t>(v);
    };
    if (g.contains("offset")) r.offset = number("offset");
    if (g.contains("length")) r.length = number("length");
    refs[key] = r;
    std::size_t i = dims.size();
    while (i > 0 && ++pos[i - 1] == dims[i - 1].second.size()) pos[--i] = 0;
    if (i == 0) return;
  }
}

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
  const auto it = refs.find(key);
  if (it == refs.end()) return {};
  const Reference& r = it->second;
  Bytes b;
  if (r.data) {
    b = *r.data;
  } else {
    const uint64_t len = r.length >= 0
                             ? static_cast<uint64_t>(r.length)
                             : objects.size_of(r.path, key) - static_cast<uint64_t>(r.offset);
    b = objects.reader(r.path).read(r.path, static_cast<uint64_t>(r.offset), len);
  }
  return std::string(b.begin(), b.end());
}

json parse_json(const std::string& text, const std::string& where) {
  if (json_too_deep(text))
    throw Error::source(where, "JSON nested more than " + std::to_string(kMaxJsonDepth) +
                                   " levels deep; refusing to read it");
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error::source(where, std::string("invalid JSON: ") + e.what());
  }
}

Variable variable_from_zarray(const ReferenceSet& refs, const std::string& name, const json& zarray,
                              const Attrs& zattrs, std::map<std::string, uint32_t>& file_index,
                              Dataset& ds, Objects& store) {
  const std::string where = ds.uri + ", array '" + name + "'";
  Variable v;
  v.name = name;
  v.origin = ds.uri;
  bool objects = false;  // |O: text values, read whole below
  json object_filter;
  try {
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
    // Fortran order is the first encoding step (before filters): decoded last, into C order.
    if (order == "F" && v.shape.size() > 1)
      v.codecs.push_back(CodecSpec{
          "order_f", json{{"id", "order_f"}, {"shape", chunks}, {"itemsize", v.dtype.size}}});
    if (zarray.contains("filters") && zarray["filters"].is_array())
      for (const auto& f : zarray["filters"]) {
        if (objects && object_filter.is_null()) {
          object_filter = f;  // the object codec comes first; checked by the caller
          continue;
        }
        v.codecs.push_back(codec_spec_from_json(f, where + " filters"));
      }
    if (zarray.contains("compressor") && !zarray["compressor"].is_null())
      v.codecs.push_back(codec_spec_from_json(zarray["compressor"], where + " compressor"));
  } catch (const json::exception& e) {
    throw Error::source(where, std::string("bad .zarray: ") + e.what());
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::Config) throw Error::source(where, e.what());
    throw;
  }
  v.attrs = zattrs;
  if (!zattrs.contains("_ARRAY_DIMENSIONS") || !zattrs["_ARRAY_DIMENSIONS"].is_array() ||
      zattrs["_ARRAY_DIMENSIONS"].size() != v.shape.size())
    throw Error::source(where, "missing or wrong _ARRAY_DIMENSIONS attribute (xarray needs it)");
  for (const auto& d : zattrs["_ARRAY_DIMENSIONS"]) v.dims.push_back(d.get<std::string>());
  v.attrs.erase("_ARRAY_DIMENSIONS");
  const json raw_fill = zarray.value("fill_value", json(nullptr));
  // Text and bool fill values stay in Zarr's own form (base64 for bytes); checked here, not later.
  const json fill = v.dtype.numeric() ? zarr_fill_value(raw_fill) : raw_fill;
  if (!v.dtype.numeric() && !objects) {
    std::vector<unsigned char> probe(static_cast<std::size_t>(v.dtype.size));
    try {
      store_from_json(probe.data(), 0, v.dtype, fill);
    } catch (const Error& e) {
      throw Error::source(where, "fill_value " + fill.dump() + ": " + e.what());
    }
  }
  v.fill_value = fill;
  if (v.fill_value.is_null() && v.attrs.contains("_FillValue"))
    v.fill_value = zarr_fill_value(nonfinite_numbers_to_markers(v.attrs["_FillValue"]));
  v.attrs.erase("_FillValue");
  v.missing_chunk_value = fill.is_null() ? json(0) : fill;

  const std::string sep = zarray.value("dimension_separator", ".");
  v.chunks.resize(static_cast<std::size_t>(v.grid.num_chunks()));
  for (int64_t idx = 0; idx < v.grid.num_chunks(); ++idx) {
    const std::vector<int64_t> c = v.grid.coords(idx);
    std::string key = name + "/";
    for (std::size_t d = 0; d < c.size(); ++d) key += (d ? sep : "") + std::to_string(c[d]);
    if (c.empty()) key += "0";  // a 0-d array's one chunk
    const auto it = refs.find(key);
    if (it == refs.end()) continue;
    auto& ref = v.chunks[static_cast<std::size_t>(idx)];
    const Reference& r = it->second;
    if (r.data) {
      ref.kind = ChunkRef::Kind::Inline;
      ref.data = r.data;
      continue;
    }
    auto [fit, added] = file_index.emplace(r.path, static_cast<uint32_t>(ds.files.size()));
    if (added) ds.files.push_back(r.path);
    ref.kind = ChunkRef::Kind::Range;
    ref.file = fit->second;
    ref.offset = static_cast<uint64_t>(r.offset);
    if (r.length >= 0) {
      ref.length = static_cast<uint64_t>(r.length);
    } else {
      const uint64_t size = store.size_of(r.path, key);
      if (size < static_cast<uint64_t>(r.offset))
        throw Error::source(key, "offset lies past the end of '" + r.path + "'");
      ref.length = size - static_cast<uint64_t>(r.offset);
    }
  }
  if (objects) {
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
  return v;
}

}  // namespace

ReferenceSet load_kerchunk(const std::string& location, SourceAccess& access) {
  const bool remote = is_remote(location);
  const std::string path = remote ? location : local_path_of(location);
  const auto text = access.reader(location, AccessRole::Target).get(path);
  if (!text) throw Error::source_missing(location, "reference file does not exist");
  return parse_kerchunk(std::string(text->begin(), text->end()), parent_location(location),
                        location, access.options().remote_protocol,
                        access.options().allow_local_references);
}

namespace {
ReferenceSet parse_kerchunk_unchecked(const std::string& text, const Base& base,
                                      const std::string& json_path);
Dataset dataset_from_references_unchecked(const ReferenceSet& refs, const std::string& uri,
                                          const std::string& engine, Objects& objects);

// A reference set is untrusted input: any JSON shape or number the code did not expect is a
// source error naming the file, never an exception escaping as an internal error.
template <typename F>
auto as_source_error(const std::string& where, F&& f) {
  try {
    return f();
  } catch (const json::exception& e) {
    throw Error::source(where, std::string("malformed reference set: ") + e.what());
  } catch (const std::logic_error& e) {
    throw Error::source(where, std::string("malformed reference set: ") + e.what());
  }
}
}  // namespace

ReferenceSet parse_kerchunk(const std::string& text, const std::string& base,
                            const std::string& json_path, const std::string& remote_protocol,
                            bool allow_local_references) {
  std::string prefix = base;
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  const Base b{prefix, remote_protocol, allow_local_references || !is_remote(prefix), json_path};
  return as_source_error(json_path, [&] { return parse_kerchunk_unchecked(text, b, json_path); });
}

namespace {

// Group paths of a reference set ("a", "a/b"): folders holding a .zgroup, below `prefix`.
std::vector<std::string> groups_below(const ReferenceSet& refs, const std::string& prefix) {
  std::vector<std::string> out;
  const std::string tail = "/.zgroup";
  for (const auto& [key, ref] : refs)
    if (key.size() > tail.size() + prefix.size() && key.rfind(prefix, 0) == 0 &&
        key.compare(key.size() - tail.size(), tail.size(), tail) == 0)
      out.push_back(key.substr(0, key.size() - tail.size()));
  return out;
}

}  // namespace

Dataset dataset_from_references(const ReferenceSet& refs, const std::string& uri,
                                const std::string& engine, const std::string& group_in,
                                SourceAccess* access_in) {
  SourceAccess local_only = SourceAccess::local_only();
  SourceAccess& access = access_in ? *access_in : local_only;
  AccessOptions opts = access.options();
  opts.chunks_remote_role = engine == "kerchunk";
  Objects objects{access, opts.data_role()};
  auto build = [&](const ReferenceSet& r) {
    if (engine == "zarr" && is_zarr_v3(r))
      return dataset_from_zarr_v3(r, uri, access, opts.data_role());
    return dataset_from_references_unchecked(r, uri, engine, objects);
  };
  std::string group = group_in;
  while (!group.empty() && group.back() == '/') group.pop_back();
  while (!group.empty() && group.front() == '/') group.erase(0, 1);
  if (group.empty()) {
    Dataset ds = as_source_error(uri, [&] { return build(refs); });
    ds.access = opts;
    if (ds.groups.empty()) ds.groups = groups_below(refs, "");
    return ds;
  }
  // The group's keys, as a store of their own.
  ReferenceSet sub;
  const std::string prefix = group + "/";
  for (const auto& [key, ref] : refs)
    if (key.rfind(prefix, 0) == 0) sub[key.substr(prefix.size())] = ref;
  if (!sub.count(".zgroup") && !sub.count("zarr.json")) {
    std::string known;
    for (const auto& g : groups_below(refs, "")) known += (known.empty() ? "" : ", ") + g;
    throw Error::config("group", "no group '" + group + "' in " + uri +
                                     (known.empty() ? " (it has none)" : " (has: " + known + ")"));
  }
  Dataset ds = as_source_error(uri, [&] { return build(sub); });
  ds.access = opts;
  ds.group = group;
  if (ds.groups.empty()) ds.groups = groups_below(refs, prefix);
  return ds;
}

namespace {

ReferenceSet parse_kerchunk_unchecked(const std::string& text, const Base& base,
                                      const std::string& json_path) {
  const json doc = parse_json(text, json_path);
  if (!doc.is_object()) throw Error::source(json_path, "reference set must be a JSON object");
  ReferenceSet refs;
  const bool v1 = doc.contains("version");
  if (v1 && doc["version"] != 1)
    throw Error::source(
        json_path, "unsupported reference version " + doc["version"].dump() + " (supported: 0, 1)");
  if (v1 && (!doc.contains("refs") || !doc["refs"].is_object()))
    throw Error::source(json_path, "version 1 reference set without a 'refs' object");
  std::map<std::string, std::string> templates;
  if (v1 && doc.contains("templates")) {
    if (!doc["templates"].is_object())
      throw Error::source(json_path, "'templates' must be an object");
    for (const auto& [k, t] : doc["templates"].items()) {
      if (!t.is_string()) throw Error::source(json_path, "template '" + k + "' must be a string");
      templates[k] = t.get<std::string>();
    }
  }
  const json& body = v1 ? doc["refs"] : doc;
  for (const auto& [key, value] : body.items()) {
    try {
      refs[key] = parse_ref(value, key, base, templates);
    } catch (const Error& e) {
      throw Error::source(json_path, e.what());
    }
  }
  if (v1 && doc.contains("gen")) {
    if (!doc["gen"].is_array()) throw Error::source(json_path, "'gen' must be a list");
    int64_t budget = budget::kGeneratedReferences;
    for (const auto& g : doc["gen"]) expand_gen(g, refs, base, templates, budget);
  }
  return refs;
}

}  // namespace

namespace {

// Keys of every chunk of an array whose .zarray is `zarray`, below `prefix` ("t/").
std::vector<std::string> chunk_keys_of(const json& zarray, const std::string& prefix,
                                       const std::string& where) {
  const auto shape = json_int_list(zarray.at("shape"), where + " shape", 0);
  const auto chunks = json_int_list(zarray.at("chunks"), where + " chunks", 1);
  if (chunks.size() != shape.size())
    throw Error::source(where, "chunks and shape differ in length");
  const std::string sep = zarray.value("dimension_separator", ".");
  double total = 1;
  std::vector<int64_t> n(shape.size());
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (chunks[d] <= 0 || shape[d] < 0) throw Error::source(where, "bad shape or chunks");
    n[d] = (shape[d] + chunks[d] - 1) / chunks[d];
    total *= static_cast<double>(n[d]);
  }
  // Over HTTP each possible chunk is asked for; refuse what would take hours.
  if (total > static_cast<double>(budget::kProbedChunks))
    throw Error::source(where, "more than " + std::to_string(budget::kProbedChunks) +
                                   " chunks to look for one by one over plain HTTP; use S3 "
                                   "(listable) or a reference set");
  std::vector<std::string> out;
  if (total == 0) return out;
  std::vector<int64_t> c(shape.size(), 0);
  for (;;) {
    std::string key = prefix;
    for (std::size_t d = 0; d < c.size(); ++d) key += (d ? sep : "") + std::to_string(c[d]);
    if (c.empty()) key += "0";
    out.push_back(key);
    std::size_t d = c.size();
    while (d > 0 && ++c[d - 1] == n[d - 1]) c[--d] = 0;
    if (d == 0) break;
  }
  return out;
}

// References to the chunks among `keys` that the server has (one concurrent HEAD each), with
// their sizes: a web server cannot list a store.
// Asked in batches: a request's state is far larger than its answer, and a store may declare up
// to budget::kProbedChunks chunks.
void add_present_chunks(ReferenceSet& refs, const std::string& store,
                        const std::vector<std::string>& keys, Readable& reader) {
  constexpr std::size_t kBatch = 4096;
  for (std::size_t from = 0; from < keys.size(); from += kBatch) {
    const std::size_t to = std::min(keys.size(), from + kBatch);
    std::vector<std::string> urls;
    urls.reserve(to - from);
    for (std::size_t i = from; i < to; ++i) urls.push_back(join_location(store, keys[i]));
    const auto infos = reader.info_many(urls);
    for (std::size_t i = from; i < to; ++i) {
      if (!infos[i - from].exists) continue;
      Reference r;
      r.path = urls[i - from];
      r.length = static_cast<int64_t>(infos[i - from].size);
      refs[keys[i]] = r;
    }
  }
}

// The chunk (or shard) keys of a v3 array under its chunk key encoding, below `prefix` ("t/").
std::vector<std::string> v3_chunk_keys(const json& meta, const std::string& prefix,
                                       const std::string& where) {
  const auto shape = json_int_list(meta.at("shape"), where + " shape", 0);
  const auto chunks = json_int_list(meta.at("chunk_grid").at("configuration").at("chunk_shape"),
                                    where + " chunk_shape", 1);
  if (chunks.size() != shape.size())
    throw Error::source(where, "chunk_shape and shape differ in length");
  const json enc = meta.value("chunk_key_encoding", json{{"name", "default"}});
  const bool v2 = enc.value("name", "default") == "v2";
  const std::string sep =
      enc.value("configuration", json::object()).value("separator", v2 ? "." : "/");
  json as_v2 = {{"shape", shape}, {"chunks", chunks}, {"dimension_separator", sep}};
  auto keys = chunk_keys_of(as_v2, prefix, where);
  if (!v2)
    for (auto& k : keys) {
      const std::string rest = k.substr(prefix.size());
      k = prefix + "c" + (shape.empty() ? "" : sep + rest);
    }
  return keys;
}

// A Zarr v3 store over plain HTTP: the root zarr.json's consolidated metadata names the arrays;
// each possible chunk (shard) is asked for with HEAD.
ReferenceSet load_zarr_v3_over_http(const std::string& store, const json& root, Readable& reader) {
  const std::string where = join_location(store, "zarr.json");
  if (!root.is_object() || !root.contains("consolidated_metadata") ||
      !root["consolidated_metadata"].is_object() ||
      !root["consolidated_metadata"].contains("metadata"))
    throw Error::source(where,
                        "no consolidated_metadata: a plain HTTP server cannot list the store");
  ReferenceSet refs;
  const std::string text = root.dump();
  refs["zarr.json"].data = std::make_shared<Bytes>(text.begin(), text.end());
  std::vector<std::string> chunk_keys;
  for (const auto& [name, meta] : root["consolidated_metadata"]["metadata"].items()) {
    const std::string doc = meta.dump();
    refs[name + "/zarr.json"].data = std::make_shared<Bytes>(doc.begin(), doc.end());
    if (meta.is_object() && meta.value("node_type", "") == "array") {
      const auto more = v3_chunk_keys(meta, name + "/", where + " " + name);
      chunk_keys.insert(chunk_keys.end(), more.begin(), more.end());
    }
  }
  add_present_chunks(refs, store, chunk_keys, reader);
  return refs;
}

// A Zarr store over plain HTTP: its consolidated metadata names the arrays; each possible chunk
// is asked for (HEAD, concurrently) and the ones the server has become references.
ReferenceSet load_zarr_over_http(const std::string& store, SourceAccess& access) {
  Readable& reader = access.reader(store);
  const std::string zmeta_url = join_location(store, ".zmetadata");
  const auto zmeta = reader.get(zmeta_url);
  if (!zmeta) {
    // Zarr v3: the root zarr.json with its consolidated metadata names the arrays.
    const std::string root_url = join_location(store, "zarr.json");
    const auto root = reader.get(root_url);
    if (root)
      return load_zarr_v3_over_http(
          store, parse_json(std::string(root->begin(), root->end()), root_url), reader);
    throw Error::source_missing(store,
                                "no consolidated metadata (.zmetadata, or zarr.json with "
                                "consolidated_metadata): a plain HTTP server cannot list a "
                                "store; consolidate it (zarr.consolidate_metadata) or serve "
                                "it from S3");
  }
  const json doc = parse_json(std::string(zmeta->begin(), zmeta->end()), zmeta_url);
  if (!doc.is_object() || !doc.contains("metadata") || !doc["metadata"].is_object())
    throw Error::source(zmeta_url, "no 'metadata' object in the consolidated metadata");
  ReferenceSet refs;
  std::vector<std::string> chunk_keys;
  for (const auto& [key, value] : doc["metadata"].items()) {
    const std::string text = value.dump();
    refs[key].data = std::make_shared<Bytes>(text.begin(), text.end());
    const std::string tail = ".zarray";
    if (key.size() >= tail.size() &&
        key.compare(key.size() - tail.size(), tail.size(), tail) == 0 && value.is_object()) {
      const auto more =
          chunk_keys_of(value, key.substr(0, key.size() - tail.size()), zmeta_url + " " + key);
      chunk_keys.insert(chunk_keys.end(), more.begin(), more.end());
    }
  }
  add_present_chunks(refs, store, chunk_keys, reader);
  return refs;
}

}  // namespace

ReferenceSet load_zarr_store(const std::string& location, SourceAccess& access) {
  std::string store = location;
  while (store.size() > 1 && store.back() == '/') store.pop_back();
  const Backend backend = backend_of(store);
  if (backend == Backend::Http) return load_zarr_over_http(store, access);
  const std::string root = backend == Backend::File ? local_path_of(store) : store;
  ReferenceSet refs;
  for (const auto& [key, size] : access.lister(store).list(root)) {
    if (key.rfind(".zarr-parallel", 0) == 0) continue;
    Reference r;
    r.path = join_location(root, key);
    r.length = static_cast<int64_t>(size);
    refs[key] = r;
  }
  if (refs.empty() && backend == Backend::S3)
    throw Error::source_missing(location, "no objects under this S3 prefix");
  return refs;
}

namespace {

Dataset dataset_from_references_unchecked(const ReferenceSet& refs, const std::string& uri,
                                          const std::string& engine, Objects& meta_reader) {
  Dataset ds;
  ds.uri = uri;
  ds.engine = engine;
  const std::string zattrs_text = text_of(refs, ".zattrs", meta_reader);
  if (json_too_deep(zattrs_text))
    throw Error::source(uri, "'.zattrs' is nested more than " + std::to_string(kMaxJsonDepth) +
                                 " levels deep; refusing to read it");
  ds.attrs = zattrs_text.empty()
                 ? Attrs::object()
                 : Attrs::parse(nonfinite_tokens_to_markers(zattrs_text), nullptr, false);
  if (ds.attrs.is_discarded() || !ds.attrs.is_object())
    throw Error::source(uri, "'.zattrs' is not a JSON object");
  nonfinite_markers_to_numbers(ds.attrs);
  std::map<std::string, uint32_t> file_index;
  std::map<std::string, int64_t> dim_sizes;
  for (const auto& [key, ref] : refs) {
    const std::string suffix = "/.zarray";
    if (key.size() <= suffix.size() ||
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    const std::string name = key.substr(0, key.size() - suffix.size());
    if (name.find('/') != std::string::npos) continue;  // nested groups are not read
    const json zarray =
        parse_json(nonfinite_tokens_to_markers(text_of(refs, key, meta_reader)), uri + ": " + key);
    const std::string attrs_text = text_of(refs, name + "/.zattrs", meta_reader);
    if (json_too_deep(attrs_text))
      throw Error::source(uri, "'" + name + "/.zattrs' is nested more than " +
                                   std::to_string(kMaxJsonDepth) +
                                   " levels deep; refusing to "
                                   "read it");
    Attrs zattrs = attrs_text.empty()
                       ? Attrs::object()
                       : Attrs::parse(nonfinite_tokens_to_markers(attrs_text), nullptr, false);
    if (zattrs.is_discarded() || !zattrs.is_object())
      throw Error::source(uri, "'" + name + "/.zattrs' is not a JSON object");
    nonfinite_markers_to_numbers(zattrs);
    if (!zarray.is_object()) throw Error::source(uri, "'" + key + "' is not a JSON object");
    if (zarray.contains("dtype") && zarray["dtype"].is_string()) {
      const std::string dt = zarray["dtype"].get<std::string>();
      const json filters = zarray.value("filters", json(nullptr));
      const bool text_objects = dt == "|O" && filters.is_array() && !filters.empty() &&
                                filters[0].is_object() && filters[0].contains("id") &&
                                filters[0]["id"].is_string() &&
                                is_text_object_codec(filters[0]["id"].get<std::string>());
      if (dt.size() >= 2 && std::string("OcMmV").find(dt[1]) != std::string::npos &&
          !text_objects) {
        ds.unsupported.emplace_back(
            name, "of dtype '" + dt + "'" + (dt[1] == 'O' ? " without a text object codec" : ""));
        continue;
      }
    }
    Variable v = variable_from_zarray(refs, name, zarray, zattrs, file_index, ds, meta_reader);
    for (std::size_t d = 0; d < v.ndim(); ++d) {
      auto [it, added] = dim_sizes.emplace(v.dims[d], v.shape[d]);
      if (!added && it->second != v.shape[d])
        throw Error::source(uri, "dimension '" + v.dims[d] + "' has length " +
                                     std::to_string(it->second) + " and " +
                                     std::to_string(v.shape[d]) + " (array '" + name + "')");
      if (added) ds.dims.push_back({v.dims[d], v.shape[d], false});
    }
    ds.variables.push_back(std::move(v));
  }
  bool has_groups = false;  // a root of groups is listed, as NetCDF's (Dataset::groups)
  for (const auto& [key, ref] : refs)
    has_groups |= key.size() > 8 && key.compare(key.size() - 8, 8, "/.zgroup") == 0;
  if (ds.variables.empty() && (!ds.unsupported.empty() || !has_groups))
    throw Error::source(uri, ds.unsupported.empty() ? "no arrays found (no '<name>/.zarray' keys)"
                                                    : "no array zarr-parallel can cache (first: '" +
                                                          ds.unsupported[0].first + "', " +
                                                          ds.unsupported[0].second + ")");
  return ds;
}

}  // namespace

}  // namespace zp
