#include "source/zarr/zarr_listing.hpp"

#include <algorithm>

#include "core/budget.hpp"
#include "core/error.hpp"
#include "core/json_int.hpp"
#include "source/source_json.hpp"

namespace zp {

using json = nlohmann::json;

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
      refs.explicit_refs[keys[i]] = r;
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
  refs.explicit_refs["zarr.json"].data = std::make_shared<Bytes>(text.begin(), text.end());
  std::vector<std::string> chunk_keys;
  for (const auto& [name, meta] : root["consolidated_metadata"]["metadata"].items()) {
    const std::string doc = meta.dump();
    refs.explicit_refs[name + "/zarr.json"].data = std::make_shared<Bytes>(doc.begin(), doc.end());
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
    refs.explicit_refs[key].data = std::make_shared<Bytes>(text.begin(), text.end());
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
    refs.explicit_refs[key] = r;
  }
  if (refs.size() == 0 && backend == Backend::S3)
    throw Error::source_missing(location, "no objects under this S3 prefix");
  return refs;
}

}  // namespace zp
