#include "config/structured_keys.hpp"

#include "codec/codec.hpp"
#include "core/error.hpp"

namespace zp {

namespace fs = std::filesystem;
using json = nlohmann::json;

void read_data_uri(const KeyDocument& doc, Config& c, const std::string& base_dir) {
  c.data_uri = resolve_path(get_string(doc, "data_uri", ""), base_dir);
  if (c.data_uri.empty())
    throw Error::config("data_uri", "required: a file glob, kerchunk .json or .zarr store");
}

void read_storage_options(const KeyDocument& doc, Config& c, const std::string&) {
  if (doc.contains("storage_options"))
    c.access.target = StorageOptions::from_json(doc["storage_options"], "storage_options");
}

void read_filter_by_keys(const KeyDocument& doc, Config& c, const std::string&) {
  if (!given(doc, "filter_by_keys")) return;
  const auto& f = doc["filter_by_keys"];
  if (!f.is_object())
    throw Error::config("filter_by_keys", "expected a mapping of GRIB keys to values");
  for (const auto& [k, v] : f.items())
    if (!v.is_string() && !v.is_number())
      throw Error::config("filter_by_keys." + k, "expected a string or a number");
  if (c.engine != "auto" && c.engine != "grib" && c.engine != "cfgrib")
    throw Error::config("filter_by_keys", "only GRIB sources (engine grib) take filter_by_keys");
  c.filter_by_keys = nlohmann::json::parse(f.dump());
}

void read_indexpath(const KeyDocument&, Config&, const std::string&) {}

void read_remote_options(const KeyDocument& doc, Config& c, const std::string&) {
  if (given(doc, "remote_options")) {
    c.access.remote = StorageOptions::from_json(doc["remote_options"], "remote_options");
    c.access.remote_given = true;
  }
  c.access.hide_secrets_of(c.data_uri);  // plans, stores and logs show it redacted
  c.access.scope_to(c.data_uri);         // secrets go to the data_uri's host only (unless `hosts`)
}

void read_remote_protocol(const KeyDocument& doc, Config& c, const std::string&) {
  std::string& rp = c.access.remote_protocol;
  rp = get_string(doc, "remote_protocol", "");
  if (rp.empty()) return;
  if (rp.size() > 3 && rp.compare(rp.size() - 3, 3, "://") == 0) rp.resize(rp.size() - 3);
  if (rp != "file" && rp != "http" && rp != "https" && rp != "s3")
    throw Error::config("remote_protocol", "'" + rp + "' is not supported (file, http, https, s3)");
}

void read_preprocessors(const KeyDocument& doc, Config& c, const std::string&) {
  if (!given(doc, "preprocessors")) return;
  const KeyDocument& p = doc["preprocessors"];
  if (!p.is_array()) throw Error::config("preprocessors", "expected a list of {type: ...} entries");
  for (std::size_t i = 0; i < p.size(); ++i) {
    const std::string key = "preprocessors[" + std::to_string(i) + "]";
    if (!p[i].is_object() || !p[i].contains("type") || !p[i]["type"].is_string())
      throw Error::config(
          key, "expected an object with a 'type' (sel, subset, isel, reverse_axis, rename)");
    c.preprocessors.push_back(json::parse(p[i].dump()));
  }
}

namespace {

// One variable's entry of the {name: [transforms]} form.
VariableSpec variable_spec(const std::string& name, const KeyDocument& transforms) {
  VariableSpec spec{name, {}};
  const std::string key = "variables." + name;
  if (transforms.is_array()) {
    for (const auto& t : transforms) {
      if (!t.is_object() || !t.contains("type") || !t["type"].is_string())
        throw Error::config(key, "each transform needs a 'type' (rename, attrs)");
      spec.transforms.push_back(json::parse(t.dump()));
    }
  } else if (transforms.is_object()) {
    // The original's {'d2m': {}} form: a map of options, read as transforms when it has a type.
    if (transforms.contains("type")) spec.transforms.push_back(json::parse(transforms.dump()));
  } else if (!transforms.is_null()) {
    throw Error::config(key, "expected a list of transforms, got " + transforms.dump());
  }
  return spec;
}

}  // namespace

void read_variables(const KeyDocument& doc, Config& c, const std::string&) {
  if (!given(doc, "variables")) return;
  const KeyDocument& v = doc["variables"];
  if (v.is_array()) {
    for (const auto& name : v) {
      if (!name.is_string())
        throw Error::config("variables", "expected variable names, got " + name.dump());
      c.variables.push_back({name.get<std::string>(), {}});
    }
    return;
  }
  if (!v.is_object())
    throw Error::config("variables", "expected a map {name: [transforms]} or a list of names");
  for (const auto& [name, transforms] : v.items())
    c.variables.push_back(variable_spec(name, transforms));
}

void read_chunks(const KeyDocument& doc, Config& c, const std::string&) {
  if (!given(doc, "chunks") || (doc["chunks"].is_string() && doc["chunks"] == "auto")) return;
  const KeyDocument& ch = doc["chunks"];
  if (!ch.is_object()) throw Error::config("chunks", "expected 'auto' or a map {dim: size}");
  c.chunks_auto = false;
  for (const auto& [dim, size] : ch.items()) {
    if (size.is_number_integer() && (size.get<int64_t>() > 0 || size.get<int64_t>() == -1)) {
      c.chunks.emplace_back(dim, size.get<int64_t>());
    } else if (size.is_string() && size == "auto") {
      c.chunks.emplace_back(dim, 0);  // 0: the source chunk size
    } else {
      throw Error::config("chunks." + dim,
                          "expected a positive integer, -1 (whole) or 'auto', got " + size.dump());
    }
  }
}

void read_add_attrs(const KeyDocument& doc, Config& c, const std::string&) {
  if (!given(doc, "add_attrs")) return;
  if (!doc["add_attrs"].is_object())
    throw Error::config("add_attrs", "expected a map of attributes");
  c.add_attrs = doc["add_attrs"];
}

void read_zarr_format(const KeyDocument& doc, Config& c, const std::string&) {
  c.zarr_format = static_cast<int>(get_positive_int(doc, "zarr_format", 2, 3));
  if (c.zarr_format != 2 && c.zarr_format != 3) throw Error::config("zarr_format", "2 or 3");
}

void read_shards(const KeyDocument& doc, Config& c, const std::string&) {
  if (!given(doc, "shards")) return;
  const KeyDocument& sh = doc["shards"];
  if (!sh.is_object()) throw Error::config("shards", "expected a map {dim: size}");
  if (c.zarr_format != 3)
    throw Error::config("shards", "sharding is a Zarr v3 feature: set zarr_format: 3");
  for (const auto& [dim, size] : sh.items()) {
    if (!size.is_number_integer() || size.get<int64_t>() < 1 || size.get<int64_t>() > INT32_MAX)
      throw Error::config("shards." + dim, "expected a positive integer, got " + size.dump());
    c.shards.emplace_back(dim, size.get<int64_t>());
  }
}

void read_compressor(const KeyDocument& doc, Config& c, const std::string&) {
  if (!doc.contains("compressor")) {
    c.compressor = default_compressor();
    return;
  }
  const json comp = json::parse(doc["compressor"].dump());
  if (comp.is_null() || (comp.is_string() && (comp == "none" || comp == "null"))) {
    c.compressor = nullptr;
    return;
  }
  if (comp.is_string()) {
    c.compressor = comp == "blosc" ? default_compressor() : json{{"id", comp}};
  } else if (comp.is_object() && comp.contains("id") && comp["id"].is_string()) {
    c.compressor = comp;
  } else {
    throw Error::config("compressor", "expected {id: blosc|zlib|gzip|zstd|lz4, ...} or none");
  }
  const std::string id = c.compressor["id"];
  if (id != "blosc" && id != "zlib" && id != "gzip" && id != "zstd" && id != "lz4")
    throw Error::config("compressor.id",
                        "unsupported compressor '" + id + "' (blosc, zlib, gzip, zstd, lz4, none)");
  if (id == "blosc") {
    json full = default_compressor();
    for (const auto& [k, v] : c.compressor.items()) full[k] = v;
    c.compressor = full;
    const std::string cname =
        c.compressor["cname"].is_string() ? c.compressor["cname"].get<std::string>() : "";
    if (cname != "lz4" && cname != "lz4hc" && cname != "blosclz" && cname != "zstd" &&
        cname != "zlib")
      throw Error::config("compressor.cname", "unsupported blosc cname '" + cname +
                                                  "' (one of: lz4, lz4hc, blosclz, zstd, zlib)");
  } else if (id == "zlib" || id == "gzip" || id == "zstd") {
    if (!c.compressor.contains("level")) c.compressor["level"] = 1;
  }
  // Settings out of range fail now, naming the key, rather than in every worker.
  try {
    encode_chain({codec_spec_from_json(c.compressor, "compressor")}, Bytes(64, 1), 4);
  } catch (const Error& e) {
    throw Error::config("compressor", e.what());
  }
}

void read_log_level(const KeyDocument& doc, Config& c, const std::string&) {
  if (!given(doc, "log_level")) return;
  const KeyDocument& l = doc["log_level"];
  if (!l.is_number_integer() || l.get<int64_t>() < 0 || l.get<int64_t>() > 2)
    throw Error::config("log_level", "expected 0, 1 or 2, got " + l.dump());
  c.log_level = static_cast<int>(l.get<int64_t>());
}

namespace {

// Values reach an sbatch script: one line each, no control characters.
std::string slurm_line(const std::string& key, const KeyDocument& x) {
  if (!x.is_string()) throw Error::config(key, "expected a string, got " + x.dump());
  const std::string str = x.get<std::string>();
  for (unsigned char ch : str)
    if (ch < 0x20) throw Error::config(key, "control characters are not allowed");
  return str;
}

}  // namespace

void read_slurm(const KeyDocument& doc, Config& c, const std::string& base_dir) {
  if (!given(doc, "slurm")) return;
  const KeyDocument& s = doc["slurm"];
  if (!s.is_object())
    throw Error::config("slurm", "expected {partition, account, qos, extra: [...], scratch}");
  for (const auto& [k, v] : s.items()) {
    const std::string key = "slurm." + k;
    if (k == "partition")
      c.slurm.partition = slurm_line(key, v);
    else if (k == "account")
      c.slurm.account = slurm_line(key, v);
    else if (k == "qos")
      c.slurm.qos = slurm_line(key, v);
    else if (k == "extra" && v.is_array())
      for (const auto& x : v) c.slurm.extra.push_back(slurm_line(key, x));
    else if (k == "scratch")  // relative to the config's folder, as cache_store
      c.slurm.scratch = resolve_path(slurm_line(key, v), base_dir);
    else
      throw Error::config(key, "unknown key (partition, account, qos, extra, scratch)");
  }
}

namespace {

// The source name as the original names stores: each glob character as '_', trailing '_' dropped.
std::string name_of(const std::string& stem) {
  std::string name = stem;
  for (char& ch : name)
    if (ch == '*' || ch == '?' || ch == '[' || ch == ']') ch = '_';
  while (!name.empty() && name.back() == '_') name.pop_back();
  return name;
}

// Store name from the source name (file stem) plus cache_label, as the original. A stem of glob
// characters only named `era5/*.nc` and `cmip/*.nc` both "_v1.zarr", so one store replaced the
// other: such a glob is named by its folder ("era5_v1.zarr").
std::string store_in_dir(const Config& c, const std::string& dir, const std::string& base_dir) {
  std::string uri = c.data_uri;
  while (uri.size() > 1 && uri.back() == '/') uri.pop_back();
  const fs::path path(uri);
  std::string name = name_of(path.stem().string());
  if (name.empty()) name = name_of(path.parent_path().filename().string());
  if (name.empty()) name = "cache";
  return resolve_path((fs::path(dir) / (name + c.cache_label + ".zarr")).string(), base_dir);
}

std::string without_trailing_slashes(std::string s) {
  while (s.size() > 5 && s.back() == '/') s.pop_back();
  return s;
}

// cache_dir on S3: the store named as in a folder (store_in_dir), under the prefix.
std::string s3_store_in_dir(const Config& c, const std::string& dir) {
  const std::string local = store_in_dir(c, "/", "/");
  return without_trailing_slashes(dir) + "/" + fs::path(local).filename().string();
}

// The options of an S3 cache store: cache_storage_options, else the source's storage_options
// without what belongs to the source's host: its HTTP headers and basic authentication never, and
// its S3 credentials only when the source is on S3 too (the same service, another bucket).
StorageOptions cache_storage_options(const KeyDocument& doc, const Config& c) {
  if (!doc.contains("cache_storage_options") || doc["cache_storage_options"].is_null()) {
    StorageOptions o = c.access.target;
    o.headers.clear();
    o.basic_user.clear();
    o.basic_password.clear();
    o.locations.clear();
    if (c.data_uri.rfind("s3://", 0) != 0) {
      o.key.clear();
      o.secret.clear();
      o.token.clear();
    }
    return o;
  }
  return StorageOptions::from_json(doc["cache_storage_options"], "cache_storage_options");
}

}  // namespace

void read_cache_store(const KeyDocument& doc, Config& c, const std::string& base_dir) {
  const std::string store = get_string(doc, "cache_store", "");
  const std::string dir = get_string(doc, "cache_dir", "");
  if (!store.empty() && !dir.empty())
    throw Error::config("cache_store", "give cache_store or cache_dir, not both");
  const bool s3 = (store.empty() ? dir : store).rfind("s3://", 0) == 0;
  if (!s3 && (store.find("://") != std::string::npos || dir.find("://") != std::string::npos))
    throw Error::config(store.empty() ? "cache_dir" : "cache_store",
                        "the cache is written to a file system path or to S3 (s3://bucket/prefix); "
                        "other URLs are sources only");
  c.cache_options = cache_storage_options(doc, c);
  if (!store.empty())
    c.cache_store = s3 ? without_trailing_slashes(store) : resolve_path(store, base_dir);
  else if (!dir.empty())
    c.cache_store = s3 ? s3_store_in_dir(c, dir) : store_in_dir(c, dir, base_dir);
  else
    throw Error::config("cache_store", "required: cache_store (a .zarr path) or cache_dir");
}

void read_with_cache_store(const KeyDocument&, Config&, const std::string&) {}

}  // namespace zp
