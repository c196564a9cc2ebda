#include "config/config.hpp"

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config_keys.hpp"
#include "core/error.hpp"
#include "core/hash.hpp"
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
    throw Error::config("",
                        "the YAML expands to more than a million values (aliases?); a config "
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
    std::string part =
        key.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
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
      if (!target->contains(part) || !(*target)[part].is_object())
        (*target)[part] = ojson::object();
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

// A NUL inside a string is cut by every C call it reaches ("a.nc\0/x" opens a.nc): refused in
// any value or key, named by its path as other errors name it (preprocessors[0].time).
void refuse_nul(const ojson& j, const std::string& path) {
  const auto where = [&](const std::string& inner) { return path.empty() ? inner : path + inner; };
  if (j.is_string() && j.get_ref<const std::string&>().find('\0') != std::string::npos)
    throw Error::config(path, "contains a NUL character; text and paths cannot hold one");
  if (j.is_array())
    for (std::size_t i = 0; i < j.size(); ++i)
      refuse_nul(j[i], where("[" + std::to_string(i) + "]"));
  if (!j.is_object()) return;
  for (const auto& [key, value] : j.items()) {
    if (key.find('\0') != std::string::npos)
      throw Error::config(path, "a key contains a NUL character; keys cannot hold one");
    refuse_nul(value, path.empty() ? key : path + "." + key);
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
  refuse_nul(doc, "");
  return read_config_keys(doc, base_dir);
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
