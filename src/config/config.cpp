#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "codec/codec.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/units.hpp"
#include "core/utf8.hpp"

namespace zp {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;  // the YAML document keeps its key order (chunks, add_attrs)

namespace {

ojson scalar_to_json(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  // Escapes such as "\x85" can make bytes that are not UTF-8, which JSON cannot hold.
  if (!valid_utf8(s)) throw Error::config("", "a value is not UTF-8 text (check \\x escapes)");
  if (n.Tag() == "!") return s;  // quoted in YAML: always a string
  if (s == "null" || s == "~" || s.empty()) return nullptr;
  if (s == "true" || s == "True" || s == "yes") return true;
  if (s == "false" || s == "False" || s == "no") return false;
  try {
    std::size_t pos = 0;
    const long long i = std::stoll(s, &pos);
    if (pos == s.size()) return i;
  } catch (...) {
  }
  try {
    std::size_t pos = 0;
    const double d = std::stod(s, &pos);
    if (pos == s.size()) return d;
  } catch (...) {
  }
  return s;
}

// YAML aliases share nodes; converting to JSON copies them, so a few hundred bytes of nested
// aliases can stand for billions of values. The conversion counts what it makes and how deep.
struct YamlBudget {
  int64_t nodes_left = 1'000'000;
  int depth = 0;
};

ojson yaml_to_json(const YAML::Node& n, YamlBudget& budget) {
  if (--budget.nodes_left < 0)
    throw Error::config("", "the YAML expands to more than a million values (aliases?); a config "
                            "is far smaller");
  struct Deeper {
    YamlBudget& b;
    explicit Deeper(YamlBudget& x) : b(x) {
      if (++b.depth > 64) throw Error::config("", "the YAML nests more than 64 levels deep");
    }
    ~Deeper() { --b.depth; }
  };
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      const Deeper guard(budget);
      ojson j = ojson::object();
      for (const auto& kv : n) {
        const std::string key = kv.first.IsScalar() ? kv.first.Scalar() : std::string();
        if (!kv.first.IsScalar() || !valid_utf8(key))
          throw Error::config("", "keys must be plain UTF-8 text");
        if (j.contains(key))
          throw Error::config(key, "appears twice in the same mapping; give each key once");
        j[key] = yaml_to_json(kv.second, budget);
      }
      return j;
    }
    case YAML::NodeType::Sequence: {
      const Deeper guard(budget);
      ojson j = ojson::array();
      for (const auto& x : n) j.push_back(yaml_to_json(x, budget));
      return j;
    }
    case YAML::NodeType::Scalar:
      return scalar_to_json(n);
    default:
      return nullptr;
  }
}

ojson parse_yaml(const std::string& text, const std::string& where) {
  if (!valid_utf8(text)) throw Error::config(where, "the config is not UTF-8 text");
  try {
    YamlBudget budget;
    return yaml_to_json(YAML::Load(text), budget);
  } catch (const YAML::Exception& e) {
    throw Error::config(where, std::string("invalid YAML: ") + e.what());
  }
}

const std::set<std::string> kKeys = {"data_uri",           "engine",
                                     "group",              "filter_by_keys",
                                     "indexpath",          "concat_dim",
                                     "preprocessors",      "variables",
                                     "chunks",
                                     "add_attrs",          "cache_label",
                                     "cache_store",        "cache_dir",
                                     "zarr_format",        "compressor",
                                     "encoding",           "deploy_mode",
                                     "num_jobs",           "simultaneous_worker_limit",
                                     "memory_limit",       "worker_timeout",
                                     "overwrite",          "resume",
                                     "recommend_changes",  "await_completion",
                                     "generate_stats",     "log_level",
                                     "threads_per_worker", "slurm",
                                     "storage_options",    "remote_protocol",
                                     "shards",             "allow_local_references",
                                     "remote_options",     "on_source_change"};

std::string get_string(const ojson& doc, const std::string& key, const std::string& fallback) {
  if (!doc.contains(key) || doc[key].is_null()) return fallback;
  if (doc[key].is_string()) return doc[key].get<std::string>();
  if (doc[key].is_number()) return doc[key].dump();
  throw Error::config(key, "expected a string, got " + doc[key].dump());
}

// cfgrib's filter_by_keys: a mapping of GRIB keys to a string or number each (indexpath, its
// other backend_kwarg, is accepted and ignored: the manifest is ours).
json grib_filter(const ojson& doc, const std::string& engine) {
  if (!doc.contains("filter_by_keys") || doc["filter_by_keys"].is_null()) return json::object();
  const ojson& f = doc["filter_by_keys"];
  if (!f.is_object())
    throw Error::config("filter_by_keys", "expected a mapping of GRIB keys to values");
  for (const auto& [k, v] : f.items())
    if (!v.is_string() && !v.is_number())
      throw Error::config("filter_by_keys." + k, "expected a string or a number");
  if (engine != "auto" && engine != "grib" && engine != "cfgrib")
    throw Error::config("filter_by_keys", "only GRIB sources (engine grib) take filter_by_keys");
  return json::parse(f.dump());
}

bool get_bool(const ojson& doc, const std::string& key, bool fallback) {
  if (!doc.contains(key) || doc[key].is_null()) return fallback;
  if (!doc[key].is_boolean())
    throw Error::config(key, "expected true or false, got " + doc[key].dump());
  return doc[key].get<bool>();
}

int64_t get_positive_int(const ojson& doc, const std::string& key, int64_t fallback,
                         int64_t max) {
  if (!doc.contains(key) || doc[key].is_null()) return fallback;
  const ojson& v = doc[key];
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > INT64_MAX) ||
      v.get<int64_t>() < 1 || v.get<int64_t>() > max)
    throw Error::config(key, "expected an integer from 1 to " + std::to_string(max) + ", got " +
                                 v.dump());
  return v.get<int64_t>();
}

std::string one_of(const ojson& doc, const std::string& key, const std::string& fallback,
                   const std::vector<std::string>& allowed) {
  const std::string v = get_string(doc, key, fallback);
  for (const auto& a : allowed)
    if (v == a) return v;
  std::string list;
  for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
  throw Error::config(key, "'" + v + "' is not one of: " + list);
}

std::string resolve_path(const std::string& p, const std::string& base_dir) {
  if (p.empty() || fs::path(p).is_absolute() || p.find("://") != std::string::npos) return p;
  return (fs::path(base_dir) / p).lexically_normal().string();
}

void parse_preprocessors(const ojson& doc, Config& c) {
  if (!doc.contains("preprocessors") || doc["preprocessors"].is_null()) return;
  const ojson& p = doc["preprocessors"];
  if (!p.is_array()) throw Error::config("preprocessors", "expected a list of {type: ...} entries");
  for (std::size_t i = 0; i < p.size(); ++i) {
    const std::string key = "preprocessors[" + std::to_string(i) + "]";
    if (!p[i].is_object() || !p[i].contains("type") || !p[i]["type"].is_string())
      throw Error::config(
          key, "expected an object with a 'type' (sel, subset, isel, reverse_axis, rename)");
    c.preprocessors.push_back(json::parse(p[i].dump()));
  }
}

void parse_variables(const ojson& doc, Config& c) {
  if (!doc.contains("variables") || doc["variables"].is_null()) return;
  const ojson& v = doc["variables"];
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
  for (const auto& [name, transforms] : v.items()) {
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
    c.variables.push_back(std::move(spec));
  }
}

void parse_chunks(const ojson& doc, Config& c) {
  if (!doc.contains("chunks") || doc["chunks"].is_null() ||
      (doc["chunks"].is_string() && doc["chunks"] == "auto"))
    return;
  const ojson& ch = doc["chunks"];
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

void parse_compressor(const ojson& doc, Config& c) {
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

void apply_override(ojson& doc, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error::config("--set", "expected KEY=VALUE, got '" + assignment + "'");
  const std::string key = assignment.substr(0, eq);
  const ojson value = parse_yaml(assignment.substr(eq + 1), "--set " + key);
  // A nested override of a key left at its default starts from that default.
  if (key.rfind("compressor.", 0) == 0 && !doc.contains("compressor"))
    doc["compressor"] = ojson::parse(default_compressor().dump());
  // Dotted keys reach into maps; "name[i]" into lists, the notation errors use
  // (--set 'preprocessors[0].time=["2000-01-01", "2000-01-31"]').
  ojson* target = &doc;
  std::size_t start = 0;
  for (;;) {
    const auto dot = key.find('.', start);
    std::string part = key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    std::vector<std::size_t> indexes;
    while (!part.empty() && part.back() == ']') {
      const auto open = part.rfind('[');
      const std::string digits =
          open == std::string::npos ? "" : part.substr(open + 1, part.size() - open - 2);
      if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos ||
          digits.size() > 6)
        throw Error::config("--set", "bad list index in '" + key + "'");
      indexes.insert(indexes.begin(), std::stoul(digits));
      part.erase(open);
    }
    const bool last = dot == std::string::npos;
    if (indexes.empty() && last) {
      (*target)[part] = value;
      return;
    }
    if (indexes.empty()) {
      if (!target->contains(part) || !(*target)[part].is_object()) (*target)[part] = ojson::object();
      target = &(*target)[part];
    } else {
      target = &(*target)[part];
      for (std::size_t i = 0; i < indexes.size(); ++i) {
        if (!target->is_array() || indexes[i] >= target->size())
          throw Error::config("--set", "'" + key + "': no such list entry in the config");
        target = &(*target)[indexes[i]];
      }
      if (last) {
        *target = value;
        return;
      }
    }
    start = dot + 1;
  }
}

}  // namespace

json default_compressor() {
  return {{"id", "blosc"}, {"cname", "lz4"}, {"clevel", 5}, {"shuffle", 1}, {"blocksize", 0}};
}

Config parse_config(const std::string& yaml_text, const std::string& base_dir,
                    const std::vector<std::string>& overrides) {
  ojson doc = parse_yaml(yaml_text, "");
  if (doc.is_null()) doc = ojson::object();
  if (!doc.is_object())
    throw Error::config("", "the config must be a YAML mapping of keys to values");
  for (const auto& o : overrides) apply_override(doc, o);
  for (const auto& [key, value] : doc.items())
    if (!kKeys.count(key)) throw Error::config(key, "unknown key (see the README for the keys)");

  Config c;
  c.data_uri = resolve_path(get_string(doc, "data_uri", ""), base_dir);
  if (c.data_uri.empty())
    throw Error::config("data_uri", "required: a file glob, kerchunk .json or .zarr store");
  c.engine = one_of(doc, "engine", "auto", {"auto", "netcdf", "kerchunk", "zarr", "grib", "cfgrib"});
  if (doc.contains("storage_options"))
    c.access.target = StorageOptions::from_json(doc["storage_options"], "storage_options");
  if (doc.contains("remote_options") && !doc["remote_options"].is_null()) {
    c.access.remote = StorageOptions::from_json(doc["remote_options"], "remote_options");
    c.access.remote_given = true;
  }
  c.access.hide_secrets_of(c.data_uri);  // plans, stores and logs show it redacted
  c.access.scope_to(c.data_uri);  // secrets go to the data_uri's host only (unless `hosts`)
  c.access.remote_protocol = get_string(doc, "remote_protocol", "");
  if (!c.access.remote_protocol.empty()) {
    std::string& rp = c.access.remote_protocol;
    if (rp.size() > 3 && rp.compare(rp.size() - 3, 3, "://") == 0) rp.resize(rp.size() - 3);
    if (rp != "file" && rp != "http" && rp != "https" && rp != "s3")
      throw Error::config("remote_protocol", "'" + rp + "' is not supported (file, http, https, s3)");
  }
  c.access.allow_local_references = get_bool(doc, "allow_local_references", false);
  c.concat_dim = get_string(doc, "concat_dim", "");
  c.group = get_string(doc, "group", "");
  c.filter_by_keys = grib_filter(doc, c.engine);
  parse_preprocessors(doc, c);
  parse_variables(doc, c);
  parse_chunks(doc, c);
  if (doc.contains("add_attrs") && !doc["add_attrs"].is_null()) {
    if (!doc["add_attrs"].is_object())
      throw Error::config("add_attrs", "expected a map of attributes");
    c.add_attrs = doc["add_attrs"];
  }
  c.cache_label = get_string(doc, "cache_label", "");
  c.zarr_format = static_cast<int>(get_positive_int(doc, "zarr_format", 2, 3));
  if (c.zarr_format != 2 && c.zarr_format != 3)
    throw Error::config("zarr_format", "2 or 3");
  if (doc.contains("shards") && !doc["shards"].is_null()) {
    const ojson& sh = doc["shards"];
    if (!sh.is_object()) throw Error::config("shards", "expected a map {dim: size}");
    if (c.zarr_format != 3)
      throw Error::config("shards", "sharding is a Zarr v3 feature: set zarr_format: 3");
    for (const auto& [dim, size] : sh.items()) {
      if (!size.is_number_integer() || size.get<int64_t>() < 1 || size.get<int64_t>() > INT32_MAX)
        throw Error::config("shards." + dim, "expected a positive integer, got " + size.dump());
      c.shards.emplace_back(dim, size.get<int64_t>());
    }
  }
  parse_compressor(doc, c);
  c.encoding = one_of(doc, "encoding", "source", {"source", "decoded"});
  c.deploy_mode =
      one_of(doc, "deploy_mode", "local", {"series", "local", "slurm", "mpi", "dask_distributed"});
  if (doc.contains("num_jobs") && doc["num_jobs"].is_string() && doc["num_jobs"] == "auto")
    doc.erase("num_jobs");
  c.num_jobs = get_positive_int(doc, "num_jobs", 0, 100'000'000);
  // Checked before narrowing to int: 2^32 would wrap to 0, 2^31 to a negative count.
  c.simultaneous_worker_limit =
      static_cast<int>(get_positive_int(doc, "simultaneous_worker_limit", 4, 100'000));
  if (doc.contains("memory_limit") && !doc["memory_limit"].is_null())
    c.memory_limit = parse_memory(get_string(doc, "memory_limit", ""), "memory_limit");
  if (doc.contains("worker_timeout") && !doc["worker_timeout"].is_null())
    c.worker_timeout = parse_duration(get_string(doc, "worker_timeout", ""), "worker_timeout");
  c.overwrite = get_bool(doc, "overwrite", true);
  c.resume = get_bool(doc, "resume", false);
  c.on_source_change = one_of(doc, "on_source_change", "rebuild", {"rebuild", "error"});
  c.recommend_changes = get_bool(doc, "recommend_changes", true);
  c.await_completion = get_bool(doc, "await_completion", true);
  c.generate_stats = get_bool(doc, "generate_stats", false);
  if (doc.contains("log_level") && !doc["log_level"].is_null()) {
    const ojson& l = doc["log_level"];
    if (!l.is_number_integer() || l.get<int64_t>() < 0 || l.get<int64_t>() > 2)
      throw Error::config("log_level", "expected 0, 1 or 2, got " + l.dump());
    c.log_level = static_cast<int>(l.get<int64_t>());
  }
  if (doc.contains("threads_per_worker") && doc["threads_per_worker"] != "auto")
    c.threads_per_worker =
        static_cast<int>(get_positive_int(doc, "threads_per_worker", 0, 4096));

  if (doc.contains("slurm") && !doc["slurm"].is_null()) {
    const ojson& s = doc["slurm"];
    if (!s.is_object())
      throw Error::config("slurm", "expected {partition, account, qos, extra: [...]}");
    for (const auto& [k, v] : s.items()) {
      const std::string key = "slurm." + k;
      // Values reach an sbatch script: one line each, no control characters.
      auto line = [&](const ojson& x) {
        if (!x.is_string()) throw Error::config(key, "expected a string, got " + x.dump());
        const std::string str = x.get<std::string>();
        for (unsigned char ch : str)
          if (ch < 0x20) throw Error::config(key, "control characters are not allowed");
        return str;
      };
      if (k == "partition")
        c.slurm.partition = line(v);
      else if (k == "account")
        c.slurm.account = line(v);
      else if (k == "qos")
        c.slurm.qos = line(v);
      else if (k == "extra" && v.is_array())
        for (const auto& x : v) c.slurm.extra.push_back(line(x));
      else
        throw Error::config(key, "unknown key (partition, account, qos, extra)");
    }
  }
  const std::string store = get_string(doc, "cache_store", "");
  const std::string dir = get_string(doc, "cache_dir", "");
  if (!store.empty() && !dir.empty())
    throw Error::config("cache_store", "give cache_store or cache_dir, not both");
  if (store.find("://") != std::string::npos || dir.find("://") != std::string::npos)
    throw Error::config(store.empty() ? "cache_dir" : "cache_store",
                        "the cache is written to a local or shared file system path; remote "
                        "stores (URLs) are sources only");
  if (!store.empty()) {
    c.cache_store = resolve_path(store, base_dir);
  } else if (!dir.empty()) {
    // Store name from the source name (file stem without globs) plus cache_label, as the original.
    std::string uri = c.data_uri;
    while (uri.size() > 1 && uri.back() == '/') uri.pop_back();
    std::string stem = fs::path(uri).stem().string();
    for (char& ch : stem)
      if (ch == '*' || ch == '?' || ch == '[' || ch == ']') ch = '_';
    while (!stem.empty() && stem.back() == '_') stem.pop_back();
    c.cache_store =
        resolve_path((fs::path(dir) / (stem + c.cache_label + ".zarr")).string(), base_dir);
  } else {
    throw Error::config("cache_store", "required: cache_store (a .zarr path) or cache_dir");
  }
  return c;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  std::ifstream in(path);
  if (!in) throw Error::config("", "cannot read config file '" + path + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), fs::absolute(path).parent_path().string(), overrides);
}

json Config::content_json() const {
  json vars = json::array();
  for (const auto& v : variables) vars.push_back({{"name", v.name}, {"transforms", v.transforms}});
  json ch = json::array();
  for (const auto& [d, s] : chunks) ch.push_back({d, s});
  json j = {{"data_uri", data_uri},
          {"engine", engine},
          {"concat_dim", concat_dim},
          {"preprocessors", preprocessors},
          {"variables", vars},
          {"chunks", chunks_auto ? json("auto") : ch},
          {"add_attrs", json::parse(add_attrs.dump())},
          {"zarr_format", zarr_format},
          {"compressor", compressor},
          {"encoding", encoding}};
  if (!group.empty()) j["group"] = group;  // absent by default: older caches keep their hash
  if (!filter_by_keys.empty()) j["filter_by_keys"] = filter_by_keys;
  if (!shards.empty()) {
    json sh = json::array();
    for (const auto& [d, s] : shards) sh.push_back({d, s});
    j["shards"] = sh;
  }
  return j;
}

std::string Config::content_hash() const {
  return sha256_hex(content_json().dump());
}

}  // namespace zp
