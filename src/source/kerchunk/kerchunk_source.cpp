#include "source/kerchunk/kerchunk_source.hpp"

#include <algorithm>
#include <optional>
#include <unordered_map>

#include "core/budget.hpp"
#include "core/error.hpp"
#include "core/json_int.hpp"
#include "source/kerchunk/kerchunk_template.hpp"
#include "source/source_json.hpp"
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

// How many values one "gen" dimension takes: a list's length, or {start, stop, step}'s count.
int64_t gen_count(const json& spec, const std::string& where) {
  if (spec.is_array()) return static_cast<int64_t>(spec.size());
  if (!spec.is_object()) return 0;
  const int64_t start = json_int_or(spec, "start", 0, where, 0, INT32_MAX);
  const int64_t stop =
      json_int(spec.contains("stop") ? spec["stop"] : json(), where + " stop", 0, INT32_MAX);
  const int64_t step = json_int_or(spec, "step", 1, where, 1, INT32_MAX);
  return stop > start ? (stop - start + step - 1) / step : 0;
}

// What the references of one set may still make: their count (gen) and their rendered text.
struct RefBudget {
  int64_t references = budget::kGeneratedReferences;
  int64_t text = budget::kReferenceTextBytes;
};

// Counts a made reference's key and new URL (`bytes`) against the set's text budget.
void spend_text(RefBudget& b, std::size_t bytes, const std::string& where) {
  b.text -= static_cast<int64_t>(bytes);
  if (b.text < 0)
    throw Error::source(where, "its references' keys and URLs render to more than " +
                                   std::to_string(budget::kReferenceTextBytes) +
                                   " bytes in all; refusing them");
}

// The number of references is counted before any is made: a few bytes of "gen" can ask for more
// than any machine holds. `budget`: what all entries together may still make.
void check_gen_size(const json& dims, const std::string& where, int64_t& budget) {
  int64_t total = 1;
  for (const auto& [name, spec] : dims.items()) {
    const int64_t n = gen_count(spec, where);
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
}

using GenDims = std::vector<std::pair<std::string, std::vector<int64_t>>>;

// Each dimension's values, in order.
GenDims gen_values(const json& dims, const std::string& where) {
  GenDims out;
  for (const auto& [name, spec] : dims.items()) {
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
    out.emplace_back(name, std::move(values));
  }
  return out;
}

// A rendered offset or length: a non-negative integer.
int64_t gen_number(const std::string& t, const char* field, const std::string& key) {
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
}

// One "gen" entry compiled: its fields' templates, and each rendered URL's path number (a URL is
// resolved once, not once a reference).
struct GenEntry {
  CompiledTemplate key, url;
  std::optional<CompiledTemplate> offset, length;
  std::unordered_map<std::string, uint32_t> url_ids;
};

CompiledTemplate field_template(const json& g, const char* field,
                                const std::map<std::string, std::string>& templates,
                                const std::vector<std::string>& names, const std::string& where) {
  const json& f = g[field];
  return CompiledTemplate(f.is_string() ? f.get<std::string>() : f.dump(), templates, names, where);
}

// A rendered offset or length of the point `values`: a non-negative integer.
int64_t gen_field(const CompiledTemplate& t, const char* field, const std::vector<int64_t>& values,
                  const std::string& key) {
  if (const auto v = t.value(values)) {
    if (*v < 0)
      throw Error::source(
          key, std::string(field) + " '" + std::to_string(*v) + "' is not a non-negative integer");
    return *v;
  }
  return gen_number(t.render(values), field, key);
}

// The reference of one point of the product (`values`: each dimension's value there).
void add_gen_reference(GenEntry& g, ReferenceSet& refs, const Base& base,
                       const std::vector<int64_t>& values, RefBudget& budget,
                       const std::string& where) {
  const std::string key = g.key.render(values);
  GeneratedReferences::Row row;
  const std::string url = g.url.render(values);
  const auto it = g.url_ids.find(url);
  if (it != g.url_ids.end()) {
    row.path = it->second;
    spend_text(budget, key.size(), where);
  } else {
    row.path = refs.generated.path_id(resolve_url(url, base, key));
    g.url_ids.emplace(url, row.path);
    spend_text(budget, key.size() + 2 * url.size(), where);  // the URL and its index entry
  }
  if (g.offset) row.offset = gen_field(*g.offset, "offset", values, key);
  if (g.length) row.length = gen_field(*g.length, "length", values, key);
  refs.set_generated(key, row);
}

GenEntry compile_gen(const json& g, const std::map<std::string, std::string>& templates,
                     const GenDims& dims, const std::string& where) {
  std::vector<std::string> names;
  for (const auto& d : dims) names.push_back(d.first);
  GenEntry e{field_template(g, "key", templates, names, where),
             field_template(g, "url", templates, names, where),
             std::nullopt,
             std::nullopt,
             {}};
  if (g.contains("offset")) e.offset = field_template(g, "offset", templates, names, where);
  if (g.contains("length")) e.length = field_template(g, "length", templates, names, where);
  return e;
}

// Expands one "gen" entry: the cartesian product of its dimensions.
void expand_gen(const json& g, ReferenceSet& refs, const Base& base,
                const std::map<std::string, std::string>& templates, RefBudget& budget) {
  const std::string where = "gen entry " + g.dump().substr(0, 80);
  if (!g.is_object() || !g.contains("key") || !g.contains("url") || !g.contains("dimensions"))
    throw Error::source(where, "needs key, url and dimensions");
  if (!g["dimensions"].is_object()) throw Error::source(where, "dimensions must be a map");
  check_gen_size(g["dimensions"], where, budget.references);
  const GenDims dims = gen_values(g["dimensions"], where);
  for (const auto& d : dims)
    if (d.second.empty()) return;
  GenEntry entry = compile_gen(g, templates, dims, where);
  std::vector<int64_t> values(dims.size());
  std::vector<std::size_t> pos(dims.size(), 0);
  for (;;) {
    for (std::size_t i = 0; i < dims.size(); ++i) values[i] = dims[i].second[pos[i]];
    add_gen_reference(entry, refs, base, values, budget, where);
    std::size_t i = dims.size();
    while (i > 0 && ++pos[i - 1] == dims[i - 1].second.size()) pos[--i] = 0;
    if (i == 0) return;
  }
}

ReferenceSet parse_kerchunk_unchecked(const std::string& text, const Base& base,
                                      const std::string& json_path);

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

ReferenceSet parse_kerchunk(const std::string& text, const std::string& base,
                            const std::string& json_path, const std::string& remote_protocol,
                            bool allow_local_references) {
  std::string prefix = base;
  if (!prefix.empty() && prefix.back() != '/') prefix += '/';
  const Base b{prefix, remote_protocol, allow_local_references || !is_remote(prefix), json_path};
  return as_source_error(json_path, [&] { return parse_kerchunk_unchecked(text, b, json_path); });
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
  RefBudget budget;
  for (const auto& [key, value] : body.items()) {
    try {
      Reference r = parse_ref(value, key, base, templates);
      spend_text(budget, key.size() + r.path.size(), json_path);
      refs.set(key, std::move(r));
    } catch (const Error& e) {
      throw Error::source(json_path, e.what());
    }
  }
  if (v1 && doc.contains("gen")) {
    if (!doc["gen"].is_array()) throw Error::source(json_path, "'gen' must be a list");
    for (const auto& g : doc["gen"]) expand_gen(g, refs, base, templates, budget);
  }
  return refs;
}

}  // namespace

}  // namespace zp
