#include "source/zarr/zarr_v3_source.hpp"

#include <cmath>
#include <cstring>

#include "codec/shard_index.hpp"
#include "core/budget.hpp"
#include "core/error.hpp"
#include "core/json_int.hpp"
#include "core/json_limits.hpp"
#include "core/json_nonfinite.hpp"
#include "core/text_codec.hpp"
#include "source/describe_checks.hpp"
#include "source/zarr/zarr_v3_fields.hpp"
#include "store/file_reader.hpp"

namespace zp {

using json = nlohmann::json;

namespace {

struct Reader {
  const ReferenceSet& refs;
  SourceAccess& access;
  AccessRole role;

  Bytes bytes_of(const Reference& r, uint64_t offset, uint64_t length) {
    if (r.data) {
      if (offset + length > r.data->size()) throw Error::source(r.path, "range past inline data");
      return Bytes(r.data->begin() + static_cast<std::ptrdiff_t>(offset),
                   r.data->begin() + static_cast<std::ptrdiff_t>(offset + length));
    }
    return access.reader(r.path, role)
        .read(r.path, static_cast<uint64_t>(r.offset) + offset, length);
  }
  uint64_t size_of(const Reference& r) {
    if (r.data) return r.data->size();
    if (r.length >= 0) return static_cast<uint64_t>(r.length);
    const ObjectInfo i = access.reader(r.path, role).info(r.path);
    if (!i.exists) throw Error::source_missing(r.path, "does not exist");
    return i.size - static_cast<uint64_t>(r.offset);
  }
  std::optional<json> document(const std::string& key, const std::string& uri) {
    const auto ref = refs.get(key);
    if (!ref) return std::nullopt;
    const uint64_t size = size_of(*ref);
    if (!ref->data) check_document_size(ref->path, size);
    const Bytes b = bytes_of(*ref, 0, size);
    const std::string text(b.begin(), b.end());
    if (json_too_deep(text))
      throw Error::source(uri + ": " + key, "nested more than " + std::to_string(kMaxJsonDepth) +
                                                " levels deep; refusing to read it");
    json j = json::parse(nonfinite_tokens_to_markers(text), nullptr, false);
    if (j.is_discarded() || !j.is_object())
      throw Error::source(uri + ": " + key, "not a JSON object");
    return j;
  }
};

DType v3_dtype(const std::string& t, bool big_endian, const std::string& where) {
  auto bits = [&](const std::string& prefix) { return std::stoi(t.substr(prefix.size())) / 8; };
  DType d;
  if (t == "bool") return DType{'b', 1, false};
  if (t.rfind("uint", 0) == 0)
    d = DType{'u', bits("uint"), big_endian};
  else if (t.rfind("int", 0) == 0)
    d = DType{'i', bits("int"), big_endian};
  else if (t.rfind("float", 0) == 0)
    d = DType{'f', bits("float"), big_endian};
  else if (t.rfind("complex", 0) == 0)
    d = DType{'c', bits("complex"), big_endian};
  else
    throw Error::source(where, "data_type '" + t + "' is not supported");
  if (d.size < 1 || d.size > 16 || (d.size & (d.size - 1)))
    throw Error::source(where, "data_type '" + t + "' is not supported");
  if (d.size == 1) d.big_endian = false;
  return d;
}

// fill_value in our Zarr-v2-like JSON form ("NaN", numbers, bools).
json v3_fill(const json& f, const DType& t, const std::string& where) {
  if (f.is_string()) {
    const std::string s = f.get<std::string>();
    if (s == "NaN" || s == "Infinity" || s == "-Infinity") return s;
    if (s.rfind("0x", 0) == 0 && t.kind == 'f') {  // the float's bit pattern
      const uint64_t bitsv = std::stoull(s.substr(2), nullptr, 16);
      double v = 0;
      if (t.size == 4) {
        float x;
        const auto b32 = static_cast<uint32_t>(bitsv);
        std::memcpy(&x, &b32, 4);
        v = x;
      } else {
        std::memcpy(&v, &bitsv, 8);
      }
      return zarr_fill_value(json(v));
    }
    throw Error::source(where, "fill_value " + f.dump() + " is not supported");
  }
  if (f.is_null()) throw Error::source(where, "fill_value must not be null in Zarr v3");
  return zarr_fill_value(f);
}

// xarray's v3 _FillValue attribute: floats as base64 of a little-endian double.
json fill_attribute(const json& a, const DType& t, const std::string& where) {
  if (t.kind == 'f' && a.is_string()) {
    const std::string s = a.get<std::string>();
    if (s == "NaN" || s == "Infinity" || s == "-Infinity") return s;
    const Bytes b = decode_base64(s, where + " _FillValue");
    if (b.size() != 8) throw Error::source(where, "_FillValue is not a base64 double");
    double v;
    std::memcpy(&v, b.data(), 8);
    return zarr_fill_value(json(v));
  }
  return zarr_fill_value(nonfinite_numbers_to_markers(a));
}

// The key of chunk `c` (grid coordinates) under the array's chunk key encoding.
struct KeyEncoding {
  bool v2 = false;
  std::string sep = "/";
  std::string key(const std::string& array, const std::vector<int64_t>& c) const {
    std::string k = array + "/" + (v2 ? "" : "c");
    for (std::size_t d = 0; d < c.size(); ++d)
      k += (v2 ? (d ? sep : "") : sep) + std::to_string(c[d]);
    if (c.empty() && v2) k += "0";
    return k;
  }
};

struct Chain {
  std::vector<CodecSpec> codecs;  // encode order, the serializer left out
  bool big_endian = false;
};

Chain chain_of(const json& codecs, const std::string& where) {
  Chain out;
  if (!codecs.is_array()) throw Error::source(where, "codecs must be a list");
  for (const auto& c : codecs) {
    const std::string name = c.value("name", "");
    const json conf = c.value("configuration", json::object());
    if (name == "bytes") {
      out.big_endian = conf.value("endian", "little") == "big";
      continue;
    }
    if (name == "transpose") {
      const json order = conf.value("order", json());
      bool identity = order.is_array();
      for (std::size_t i = 0; identity && i < order.size(); ++i) identity = order[i] == i;
      if (!identity)
        throw Error::source(where, "transpose codecs other than the identity are not supported");
      continue;
    }
    out.codecs.push_back(codec_from_v3(c, where));
  }
  return out;
}

// sharding_indexed's configuration. `inner` empty: the array is not sharded.
struct Sharding {
  std::vector<int64_t> inner;  // the inner chunk shape: the manifest's chunks
  json inner_codecs;
  bool index_at_end = true;
  std::size_t per_shard = 1;  // inner chunks a shard holds
};

Sharding sharding_of(const json& codecs, const std::vector<int64_t>& chunks,
                     const std::string& where) {
  Sharding sh;
  sh.inner_codecs = codecs;
  if (!codecs.is_array() || codecs.size() != 1 || codecs[0].value("name", "") != "sharding_indexed")
    return sh;
  const json conf = codecs[0].at("configuration");
  sh.inner = json_int_list(conf.at("chunk_shape"), where + " sharding chunk_shape", 1);
  if (sh.inner.size() != chunks.size())
    throw Error::source(where, "inner chunk_shape has the wrong length");
  std::vector<int64_t> per(chunks.size());
  for (std::size_t d = 0; d < sh.inner.size(); ++d) {
    if (chunks[d] % sh.inner[d] != 0)
      throw Error::source(where, "shards are not whole inner chunks");
    per[d] = chunks[d] / sh.inner[d];
  }
  // The index is read whole, 16 bytes an inner chunk: counted before it is asked for.
  sh.per_shard = static_cast<std::size_t>(budget::checked_product(
      per, budget::kInnerChunksPerShard, where, "inner chunks in one shard"));
  sh.inner_codecs = conf.at("codecs");
  bool crc = false;
  for (const auto& c : conf.value("index_codecs", json::array()))
    crc |= c.value("name", "") == "crc32c";
  if (!crc) throw Error::source(where, "shard indexes without crc32c are not supported");
  const std::string at = conf.value("index_location", "end");
  if (at != "end" && at != "start")
    throw Error::source(where, "index_location '" + at + "' is neither \"start\" nor \"end\"");
  sh.index_at_end = at == "end";
  return sh;
}

// Dimension names, attributes and _FillValue, as xarray reads them from a v3 array.
void read_v3_attributes(const json& meta, Variable& v, const std::string& where) {
  json attrs = meta.value("attributes", json::object());
  v.attrs = Attrs::parse(attrs.dump());
  nonfinite_markers_to_numbers(v.attrs);
  if (meta.contains("dimension_names") && meta["dimension_names"].is_array()) {
    for (const auto& d : meta["dimension_names"]) {
      if (!d.is_string())
        throw Error::source(where, "dimension_names must all be names (xarray needs them)");
      v.dims.push_back(d.get<std::string>());
    }
  } else if (attrs.contains("_ARRAY_DIMENSIONS") && attrs["_ARRAY_DIMENSIONS"].is_array()) {
    for (const auto& d : attrs["_ARRAY_DIMENSIONS"]) v.dims.push_back(d.get<std::string>());
  }
  if (v.dims.size() != v.shape.size())
    throw Error::source(where, "no dimension_names (xarray needs them)");
  v.attrs.erase("_ARRAY_DIMENSIONS");
  if (attrs.contains("_FillValue"))
    v.fill_value = fill_attribute(attrs["_FillValue"], v.dtype, where);
  v.attrs.erase("_FillValue");
}

// The store's objects, numbered as the dataset's files.
struct FileIndex {
  std::map<std::string, uint32_t>& index;
  Dataset& ds;
  uint32_t operator()(const Reference& r) {
    auto [it, added] = index.emplace(r.path, static_cast<uint32_t>(ds.files.size()));
    if (added) ds.files.push_back(r.path);
    return it->second;
  }
};

// Unsharded: one manifest chunk an object.
void add_chunk_objects(Reader& rd, const std::string& name, const KeyEncoding& enc, Variable& v,
                       FileIndex& file_of) {
  for (int64_t idx = 0; idx < v.grid.num_chunks(); ++idx) {
    const auto r = rd.refs.get(enc.key(name, v.grid.coords(idx)));
    if (!r) continue;
    auto& ref = v.chunks[static_cast<std::size_t>(idx)];
    if (r->data) {
      ref.kind = ChunkRef::Kind::Inline;
      ref.data = r->data;
      continue;
    }
    ref.kind = ChunkRef::Kind::Range;
    ref.file = file_of(*r);
    ref.offset = static_cast<uint64_t>(r->offset);
    ref.length = rd.size_of(*r);
  }
}

// One shard's index entries as manifest chunks: byte ranges inside the shard object.
void add_shard_entries(const std::vector<ShardEntry>& entries, const std::vector<int64_t>& sc,
                       const std::vector<int64_t>& per, const Reference& r, uint32_t file,
                       Variable& v) {
  for (std::size_t i = 0; i < entries.size(); ++i) {
    if (entries[i].missing()) continue;
    std::vector<int64_t> c(per.size());
    std::size_t rest = i;
    for (std::size_t d = per.size(); d-- > 0;) {
      c[d] = sc[d] * per[d] + static_cast<int64_t>(rest % static_cast<std::size_t>(per[d]));
      rest /= static_cast<std::size_t>(per[d]);
    }
    bool inside = true;
    for (std::size_t d = 0; d < c.size(); ++d) inside &= c[d] < v.grid.chunks_along(d);
    if (!inside) continue;  // an inner chunk of an edge shard beyond the array
    auto& ref = v.chunks[static_cast<std::size_t>(v.grid.linear_index(c))];
    ref.kind = ChunkRef::Kind::Range;
    ref.file = file;
    ref.offset = static_cast<uint64_t>(r.offset) + entries[i].offset;
    ref.length = entries[i].nbytes;
  }
}

// Index bytes read at once: the indexes of a batch are held together, and each may be 16 MiB.
constexpr uint64_t kIndexBatchBytes = uint64_t{64} << 20;

struct ShardIndexRead {
  RangeRequest request;
  int64_t shard;
  Reference ref;
};

// The present shards and where each one's index lies. Their index entries in all stay within
// twice the array's chunk budget (edge shards index inner chunks past the array's end).
std::vector<ShardIndexRead> shard_index_reads(Reader& rd, const std::string& name,
                                              const KeyEncoding& enc, const ChunkGrid& shards,
                                              std::size_t n, bool index_at_end,
                                              const std::string& where) {
  const uint64_t index_bytes = shard_index_bytes(n);
  std::vector<ShardIndexRead> out;
  for (int64_t s = 0; s < shards.num_chunks(); ++s) {
    auto r = rd.refs.get(enc.key(name, shards.coords(s)));
    if (!r || r->data) continue;
    if (static_cast<int64_t>((out.size() + 1) * n) > 2 * budget::kChunksPerArray)
      throw Error::source(where, "its shards index more than " +
                                     std::to_string(2 * budget::kChunksPerArray) +
                                     " inner chunks in all; refusing to read them");
    const uint64_t size = rd.size_of(*r);
    if (size < index_bytes) throw Error::source(r->path, "shard shorter than its index");
    const uint64_t at = index_at_end ? size - index_bytes : 0;
    RangeRequest request{r->path, static_cast<uint64_t>(r->offset) + at, index_bytes};
    out.push_back({std::move(request), s, std::move(*r)});
  }
  return out;
}

// Sharded: every present shard's index is read (in batches of requests when remote, a batch's
// indexes held together), and its entries become the manifest's chunks.
void add_shard_chunks(Reader& rd, const std::string& name, const KeyEncoding& enc,
                      const Sharding& sh, const std::vector<int64_t>& chunks,
                      const std::string& where, Variable& v, FileIndex& file_of) {
  const ChunkGrid shards = ChunkGrid::regular(v.shape, chunks, where);
  std::vector<int64_t> per(sh.inner.size());
  for (std::size_t d = 0; d < per.size(); ++d) per[d] = chunks[d] / sh.inner[d];
  const std::size_t n = sh.per_shard, index_bytes = shard_index_bytes(n);
  const auto reads = shard_index_reads(rd, name, enc, shards, n, sh.index_at_end, where);
  const std::size_t batch = std::max<std::size_t>(1, kIndexBatchBytes / index_bytes);
  for (std::size_t first = 0; first < reads.size(); first += batch) {
    const std::size_t last = std::min(reads.size(), first + batch);
    std::vector<RangeRequest> requests;
    for (std::size_t k = first; k < last; ++k) requests.push_back(reads[k].request);
    const auto indexes = rd.access.reader(requests[0].location, rd.role).read_many(requests);
    for (std::size_t k = first; k < last; ++k) {
      const Reference& r = reads[k].ref;
      const uint64_t size = rd.size_of(r);
      // The data lies beside the index: after it (index first) or before it (index last).
      const uint64_t begin = sh.index_at_end ? 0 : index_bytes;
      const uint64_t end = sh.index_at_end ? size - index_bytes : size;
      const auto entries = decode_shard_index(indexes[k - first], n, begin, end, r.path);
      add_shard_entries(entries, shards.coords(reads[k].shard), per, r, file_of(r), v);
    }
  }
}

Variable array_from(Reader& rd, const std::string& name, const json& meta, const std::string& uri,
                    std::map<std::string, uint32_t>& file_index, Dataset& ds) {
  check_array_name(name, uri);
  const std::string where = uri + ", array '" + name + "'";
  Variable v;
  v.name = name;
  v.origin = uri;
  refuse_v3_fields_not_understood(meta, where);
  v.shape = json_int_list(meta.at("shape"), where + " shape", 0);
  const json grid = meta.at("chunk_grid");
  if (grid.value("name", "") != "regular")
    throw Error::source(where, "only regular chunk grids are supported");
  const auto chunks =
      json_int_list(grid.at("configuration").at("chunk_shape"), where + " chunk_shape", 1);
  if (chunks.size() != v.shape.size())
    throw Error::source(where, "chunk_shape and shape differ in length");
  KeyEncoding enc;
  const json kenc = meta.value("chunk_key_encoding", json{{"name", "default"}});
  enc.v2 = kenc.value("name", "default") == "v2";
  enc.sep = kenc.value("configuration", json::object()).value("separator", enc.v2 ? "." : "/");
  if (enc.sep != "/" && enc.sep != ".")
    throw Error::source(where, "chunk key separator must be '/' or '.'");
  const Sharding sh = sharding_of(meta.at("codecs"), chunks, where);
  const Chain chain = chain_of(sh.inner_codecs, where + " codecs");
  v.dtype = v3_dtype(meta.at("data_type").get<std::string>(), chain.big_endian, where);
  v.codecs = chain.codecs;
  v.missing_chunk_value = v3_fill(meta.value("fill_value", json()), v.dtype, where);
  check_fill_fits(v.missing_chunk_value, v.dtype, where, "fill_value");
  read_v3_attributes(meta, v, where);
  v.grid = ChunkGrid::regular(v.shape, sh.inner.empty() ? chunks : sh.inner, where);
  v.chunks.resize(static_cast<std::size_t>(v.grid.num_chunks()));
  FileIndex file_of{file_index, ds};
  if (sh.inner.empty())
    add_chunk_objects(rd, name, enc, v, file_of);
  else
    add_shard_chunks(rd, name, enc, sh, chunks, where, v, file_of);
  return v;
}

}  // namespace

void refuse_v3_groups_on_path(const ReferenceSet& refs, const std::string& group,
                              const std::string& uri, SourceAccess& access, AccessRole role) {
  Reader rd{refs, access, role};
  for (std::size_t at = 0;; at = group.find('/', at + 1)) {
    const std::string key = at == 0 ? "zarr.json" : group.substr(0, at) + "/zarr.json";
    if (const auto meta = rd.document(key, uri))
      refuse_v3_group_fields_not_understood(*meta, uri + ": " + key);
    if (at == std::string::npos) return;
  }
}

bool is_zarr_v3(const ReferenceSet& refs) {
  return refs.contains("zarr.json") && !refs.contains(".zgroup");
}

Dataset dataset_from_zarr_v3(const ReferenceSet& refs, const std::string& uri, SourceAccess& access,
                             AccessRole role) {
  Reader rd{refs, access, role};
  Dataset ds;
  ds.uri = uri;
  ds.engine = "zarr";
  const json root = *rd.document("zarr.json", uri);
  if (root.value("zarr_format", 0) != 3)
    throw Error::source(uri, "zarr.json is not Zarr v3 metadata");
  if (root.value("node_type", "") != "group")
    throw Error::source(uri,
                        "the store's root is not a group (zarr-parallel reads groups of arrays)");
  refuse_v3_group_fields_not_understood(root, uri + ": zarr.json");
  ds.attrs = Attrs::parse(root.value("attributes", json::object()).dump());
  nonfinite_markers_to_numbers(ds.attrs);
  std::map<std::string, uint32_t> file_index;
  std::map<std::string, int64_t> dim_sizes;
  const std::string tail = "/zarr.json";
  for (const auto& [key, ref] : refs.explicit_refs) {  // metadata keys are never generated
    if (key.size() <= tail.size() || key.compare(key.size() - tail.size(), tail.size(), tail) != 0)
      continue;
    const std::string name = key.substr(0, key.size() - tail.size());
    if (name.find('/') != std::string::npos) continue;  // deeper nodes belong to subgroups
    const json meta = *rd.document(key, uri);
    if (meta.value("node_type", "") == "group") {
      ds.groups.push_back(name);
      continue;
    }
    Variable v;
    try {
      v = array_from(rd, name, meta, uri, file_index, ds);
    } catch (const json::exception& e) {
      throw Error::source(uri + ", array '" + name + "'",
                          std::string("bad zarr.json: ") + e.what());
    } catch (const std::logic_error& e) {
      throw Error::source(uri + ", array '" + name + "'",
                          std::string("bad zarr.json: ") + e.what());
    }
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
  if (ds.variables.empty() && ds.groups.empty())  // a root of groups is listed, as NetCDF's
    throw Error::source(uri, "no arrays found (no '<name>/zarr.json' of an array)");
  return ds;
}

}  // namespace zp
