#include "write/verify_store.hpp"

#include <fmt/format.h>

#include <cstring>

#include "codec/codec.hpp"
#include "core/error.hpp"
#include "core/json_limits.hpp"
#include "core/json_nonfinite.hpp"
#include "plan/units.hpp"
#include "write/job_runner.hpp"
#include "write/zarr_metadata.hpp"

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

// Compares stored JSON metadata with what the plan says it must be, .zmetadata (what xarray reads
// first) entry by entry.
void check_metadata(const Plan& plan, const FileStore& store, VerifyReport& r, std::size_t max) {
  auto compare = [&](const std::string& key, const nlohmann::ordered_json& expected) {
    const auto text = store.get(key);
    if (!text) return note(r, max, key + ": missing");
    if (json_too_deep(*text)) return note(r, max, key + ": nested too deep to be metadata");
    const json got = json::parse(nonfinite_tokens_to_markers(*text), nullptr, false);
    if (got.is_discarded()) return note(r, max, key + ": not JSON");
    const std::string diff = differing_members(got, nonfinite_numbers_to_markers(expected));
    if (!diff.empty()) note(r, max, key + ": " + diff);
  };
  compare(".zgroup", nlohmann::ordered_json{{"zarr_format", 2}});
  compare(".zattrs", plan.global_attrs);
  for (const auto& a : plan.arrays) {
    compare(a.name + "/.zarray", nlohmann::ordered_json::parse(zarray_json(a).dump()));
    compare(a.name + "/.zattrs", zattrs_json(a));
  }
  const auto text = store.get(".zmetadata");
  if (!text) return note(r, max, ".zmetadata: missing");
  if (json_too_deep(*text)) return note(r, max, ".zmetadata: nested too deep to be metadata");
  const json got = json::parse(nonfinite_tokens_to_markers(*text), nullptr, false);
  const json want = nonfinite_numbers_to_markers(consolidated_json(plan));
  if (!got.is_object() || !got.contains("metadata") || !got["metadata"].is_object())
    return note(r, max, ".zmetadata: not consolidated Zarr metadata");
  if (got.value("zarr_consolidated_format", 0) != 1)
    note(r, max, ".zmetadata: zarr_consolidated_format is not 1");
  const std::string diff = differing_members(got["metadata"], want["metadata"]);
  if (!diff.empty()) note(r, max, ".zmetadata: " + diff);
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

VerifyReport verify_store(const Plan& plan, const FileStore& store, int threads, std::size_t max) {
  VerifyReport r;
  check_metadata(plan, store, r, max);
  ThreadPool pool(threads);
  const Dataset files = files_of(plan);
  ChunkReader reader(files);
  for (const auto& a : plan.arrays) {
    if (a.num_chunks() == 0) continue;
    const std::vector<CodecSpec> chain = output_codecs(a);
    Region all;
    all.lo.assign(a.ndim(), 0);
    for (std::size_t d = 0; d < a.ndim(); ++d) all.hi.push_back(a.chunks_along(d));
    for (const Region& unit : units_in(a, all)) {
      const auto keys = chunks_in(unit);
      const std::vector<Bytes> expected = assemble_unit(a, unit, reader, pool);
      for (std::size_t k = 0; k < keys.size(); ++k)
        for (const std::string& key : chunk_keys(a, keys[k])) {
          ++r.chunks_checked;
          const auto stored = store.get(key);
          if (!stored) {
            ++r.chunks_different;
            note(r, max, key + ": missing");
            continue;
          }
          Bytes got;
          try {
            got = decode_chain(chain, Bytes(stored->begin(), stored->end()), a.chunk_bytes(), key);
          } catch (const Error& e) {
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
