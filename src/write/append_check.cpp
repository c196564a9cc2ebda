#include "write/append_check.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <optional>

#include "core/json_limits.hpp"
#include "core/json_nonfinite.hpp"
#include "write/output_format.hpp"

namespace zp {

using json = nlohmann::json;

namespace {

// The consolidated documents of `doc`, to be changed in place (the object is ours, not const).
json* documents_of(json& doc) {
  return const_cast<json*>(consolidated_documents(doc));
}

std::vector<int64_t> ints_of(const json& v) {
  std::vector<int64_t> out;
  if (!v.is_array()) return out;
  for (const auto& e : v)
    if (e.is_number_integer()) out.push_back(e.get<int64_t>());
  return out.size() == v.size() ? out : std::vector<int64_t>{};
}

std::vector<int64_t> shape_of(const json& doc) {
  return doc.is_object() && doc.contains("shape") ? ints_of(doc["shape"]) : std::vector<int64_t>{};
}

// v2 "chunks", v3 chunk_grid.configuration.chunk_shape.
std::vector<int64_t> chunks_of(const json& doc) {
  if (!doc.is_object()) return {};
  if (doc.contains("chunks")) return ints_of(doc["chunks"]);
  const json* g = doc.contains("chunk_grid") ? &doc["chunk_grid"] : nullptr;
  if (!g || !g->is_object() || !g->contains("configuration") ||
      !(*g)["configuration"].is_object() || !(*g)["configuration"].contains("chunk_shape"))
    return {};
  return ints_of((*g)["configuration"]["chunk_shape"]);
}

// The key of array `a`'s document in the consolidated metadata.
std::string document_key(const Plan& plan, const ArrayPlan& a) {
  return plan.zarr_format == 2 ? a.name + "/.zarray" : a.name;
}

const ArrayPlan* array_named(const Plan& plan, const std::string& key) {
  for (const auto& a : plan.arrays)
    if (document_key(plan, a) == key) return &a;
  return nullptr;
}

std::optional<json> stored_consolidated(const Plan& plan, const Writable& store) {
  const auto text = store.get(output_format(plan.zarr_format).consolidated(plan).first);
  if (!text || json_too_deep(*text)) return std::nullopt;
  json got = json::parse(nonfinite_tokens_to_markers(*text), nullptr, false);
  if (got.is_discarded()) return std::nullopt;
  return got;
}

}  // namespace

void adopt_store_chunks(Plan& plan, const Writable& store) {
  auto got = stored_consolidated(plan, store);
  json* docs = got ? documents_of(*got) : nullptr;
  if (!docs) return;
  for (ArrayPlan& a : plan.arrays) {
    if (!a.coordinate || a.stored || !a.inner_chunks.empty()) continue;
    const std::string key = document_key(plan, a);
    if (!docs->contains(key)) continue;
    const std::vector<int64_t> c = chunks_of((*docs)[key]);
    bool fits = c.size() == a.ndim();
    for (std::size_t d = 0; fits && d < c.size(); ++d) fits = c[d] >= 1 && c[d] <= a.chunks[d];
    if (fits) a.chunks = c;
  }
}

namespace {

// One array's old and new shapes: equal, or grown along exactly one dimension (recorded).
void compare_shapes(const ArrayPlan& a, const std::vector<int64_t>& was,
                    const std::vector<int64_t>& now, AppendShape& out) {
  if (was.size() != now.size() || was.size() != a.ndim()) {
    out.why = a.name + "'s dimensions changed";
    return;
  }
  for (std::size_t d = 0; d < was.size() && out.why.empty(); ++d) {
    if (a.dims[d] == out.dim || (out.dim.empty() && was[d] != now[d]))
      out.old_length[a.name] = was[d];
    if (was[d] == now[d]) continue;
    if (now[d] < was[d] || (!out.dim.empty() && out.dim != a.dims[d])) {
      out.why = fmt::format("{} changed along {} ({} → {}), not only grown along one dimension",
                            a.name, a.dims[d], was[d], now[d]);
      return;
    }
    out.dim = a.dims[d];
    out.from = std::max(out.from, was[d]);
    out.to = std::max(out.to, now[d]);
  }
}

// " (in 'a', 'b')": the members of two objects that differ (names only, never values).
std::string members_differing(const json& g, const json& w) {
  if (!g.is_object() || !w.is_object()) return "";
  std::string out;
  for (const auto& [k, v] : w.items())
    if (!g.contains(k) || g[k] != v) out += (out.empty() ? "'" : ", '") + k + "'";
  for (const auto& [k, v] : g.items())
    if (!w.contains(k)) out += (out.empty() ? "'" : ", '") + k + "'";
  return out.empty() ? "" : " (in " + out + ")";
}

// Every document equal once the new shapes are put into the old ones; shapes compared apart.
void compare_documents(const Plan& fresh, json& got, json& want, AppendShape& out) {
  json* got_docs = documents_of(got);
  json* want_docs = documents_of(want);
  if (!got_docs || !want_docs) return void(out.why = "the store has no consolidated metadata");
  for (auto& [key, w] : want_docs->items()) {
    if (!got_docs->contains(key)) return void(out.why = key + " is new");
    json& g = (*got_docs)[key];
    if (const ArrayPlan* a = array_named(fresh, key); a && g.is_object() && w.contains("shape")) {
      const auto was = shape_of(g), now = shape_of(w);
      g["shape"] = w["shape"];
      if (g == w) compare_shapes(*a, was, now, out);
    }
    if (g != w && out.why.empty()) out.why = key + " differs" + members_differing(g, w);
    if (!out.why.empty()) return;
  }
  for (const auto& [key, g] : got_docs->items())
    if (!want_docs->contains(key)) return void(out.why = key + " is gone");
  got_docs->clear();
  want_docs->clear();
  if (got != want) out.why = "the store's root metadata differs";
}

// Arrays having the grown dimension that did not grow (compared before it was known) get their
// length along it.
void fill_unchanged_lengths(const Plan& fresh, AppendShape& out) {
  if (out.dim.empty()) return out.old_length.clear();
  for (const ArrayPlan& a : fresh.arrays) {
    const auto d = std::find(a.dims.begin(), a.dims.end(), out.dim);
    if (d != a.dims.end() && !out.old_length.count(a.name))
      out.old_length[a.name] = a.shape[static_cast<std::size_t>(d - a.dims.begin())];
  }
}

}  // namespace

AppendShape append_shape(const Plan& fresh, const Writable& store) {
  AppendShape out;
  auto got = stored_consolidated(fresh, store);
  if (!got) return {"its consolidated metadata is missing or not JSON", "", {}, 0, 0};
  json want =
      nonfinite_numbers_to_markers(output_format(fresh.zarr_format).consolidated(fresh).second);
  compare_documents(fresh, *got, want, out);
  if (out.why.empty()) fill_unchanged_lengths(fresh, out);
  return out;
}

}  // namespace zp
