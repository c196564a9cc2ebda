#include "write/verify_store.hpp"

#include <fmt/format.h>

#include <cstring>

#include "codec/codec.hpp"
#include "core/error.hpp"
#include "core/json_limits.hpp"
#include "core/json_nonfinite.hpp"
#include "plan/units.hpp"
#include "write/job_runner.hpp"
#include "write/output_format.hpp"

namespace zp {

using json = nlohmann::json;

namespace {

void note(VerifyReport& r, std::size_t max, std::string what) {
  if (r.differences.size() < max) r.differences.push_back(std::move(what));
}

// The members of two JSON objects that differ, named ("" when equal): keys only, never values,
// which may be whole documents.
std::string differing_members(const json& got, const json& want) {
  if (!got.is_object() || !want.is_object()) return got == want ? "" : "not the expected document";
  std::string out;
  auto add = [&](const std::string& what) { out += (out.empty() ? "" : ", ") + what; };
  for (const auto& [k, v] : want.items()) {
    if (!got.contains(k))
      add("'" + k + "' missing");
    else if (got[k] != v)
      add("'" + k + "' differs");
  }
  for (const auto& [k, v] : got.items())
    if (!want.contains(k)) add("'" + k + "' unexpected");
  return out;
}

// Compares stored JSON metadata with what the plan says it must be, and the consolidated document
// (what xarray reads first) entry by entry.
void check_metadata(const Plan& plan, const Writable& store, VerifyReport& r, std::size_t max) {
  const OutputFormat& format = output_format(plan.zarr_format);
  auto load = [&](const std::string& key) -> std::optional<json> {
    const auto text = store.get(key);
    if (!text) return note(r, max, key + ": missing"), std::nullopt;
    if (json_too_deep(*text))
      return note(r, max, key + ": nested too deep to be metadata"), std::nullopt;
    json got = json::parse(nonfinite_tokens_to_markers(*text), nullptr, false);
    if (got.is_discarded()) return note(r, max, key + ": not JSON"), std::nullopt;
    return got;
  };
  const auto [cons_key, cons_doc] = format.consolidated(plan);
  for (const auto& [key, expected] : format.metadata(plan)) {
    if (key == cons_key) continue;  // v3's root zarr.json is the consolidated document
    const auto got = load(key);
    if (!got) continue;
    const std::string diff = differing_members(*got, nonfinite_numbers_to_markers(expected));
    if (!diff.empty()) note(r, max, key + ": " + diff);
  }
  const auto got = load(cons_key);
  if (!got) return;
  const json want = nonfinite_numbers_to_markers(cons_doc);
  const json* got_map = consolidated_documents(*got);
  const json* want_map = consolidated_documents(want);
  if (!got_map) return note(r, max, cons_key + ": not consolidated Zarr metadata");
  json got_rest = *got, want_rest = want;
  for (json* d : {&got_rest, &want_rest}) {
    if (d->contains("metadata")) d->erase("metadata");
    if (d->contains("consolidated_metadata")) (*d)["consolidated_metadata"].erase("metadata");
  }
  std::string diff = differing_members(got_rest, want_rest);
  const std::string inner = differing_members(*got_map, *want_map);
  if (!inner.empty()) diff += (diff.empty() ? "" : ", ") + inner;
  if (!diff.empty()) note(r, max, cons_key + ": " + diff);
}

// First element (index) where two chunks differ, or -1.
int64_t first_difference(const Bytes& a, const Bytes& b, int itemsize) {
  if (a.size() != b.size()) return 0;
  for (std::size_t i = 0; i < a.size(); i += static_cast<std::size_t>(itemsize))
    if (std::memcmp(a.data() + i, b.data() + i, static_cast<std::size_t>(itemsize)) != 0)
      return static_cast<int64_t>(i) / itemsize;
  return -1;
}

}  // namespace

VerifyReport verify_store(const Plan& plan, const Writable& store, int threads, std::size_t max) {
  VerifyReport r;
  const OutputFormat& format = output_format(plan.zarr_format);
  check_metadata(plan, store, r, max);
  ThreadPool pool(threads);
  const Dataset files = files_of(plan);
  ChunkReader reader(files);
  for (const auto& a : plan.arrays) {
    if (a.num_chunks() == 0) continue;
    Region all;
    all.lo.assign(a.ndim(), 0);
    for (std::size_t d = 0; d < a.ndim(); ++d) all.hi.push_back(a.chunks_along(d));
    for (const Region& unit : units_in(a, all)) {
      const auto keys = chunks_in(unit);
      const std::vector<Bytes> expected = assemble_unit(a, unit, reader, pool);
      for (std::size_t k = 0; k < keys.size(); ++k)
        for (const std::string& key : chunk_keys(a, keys[k], format)) {
          ++r.chunks_checked;
          const auto text = store.get(key);
          std::optional<Bytes> stored;
          if (text) stored = Bytes(text->begin(), text->end());
          Bytes got;
          try {
            got = format.decode(a, stored, key);
          } catch (const Error& e) {
            if (!stored) {
              ++r.chunks_different;
              note(r, max, key + ": missing");
              continue;
            }
            ++r.chunks_different;
            note(r, max, key + ": does not decode (" + e.what() + ")");
            continue;
          }
          const int64_t at = first_difference(expected[k], got, a.conversion.out.size);
          if (at >= 0) {
            ++r.chunks_different;
            note(r, max, fmt::format("{}: element {} differs (and maybe more)", key, at));
          }
        }
    }
  }
  return r;
}

}  // namespace zp
