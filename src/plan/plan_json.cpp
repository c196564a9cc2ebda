#include "plan/plan_json.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "core/hash.hpp"
#include "core/json_int.hpp"
#include "core/json_limits.hpp"
#include "core/json_nonfinite.hpp"
#include "plan/plan_check.hpp"
#include "plan/units.hpp"
#include "source/dataset_json.hpp"
#include "source/kerchunk/kerchunk_template.hpp"
#include "store/file_store.hpp"

namespace zp {

using json = nlohmann::json;

namespace {

json file_conversions_json(const ArrayPlan& a) {
  json out = json::array();
  for (const auto& fc : a.file_conversions)
    out.push_back({{"first_file", fc.first_file}, {"conversion", fc.conversion.to_json()}});
  return out;
}

json dimmap_json(const DimMap& m) {
  json segments = json::array();
  for (const auto& s : m.segments) segments.push_back({s.out, s.count, s.src, s.step});
  return {{"source", m.source}, {"name", m.name}, {"count", m.count}, {"segments", segments}};
}

// An integer at j[key]: a JSON integer in [lo, hi], else Error(Config) naming the field (a float
// such as 1e300 is refused, never converted with undefined behaviour).
int64_t int_of(const json& j, const std::string& where, const std::string& field,
               int64_t lo = INT64_MIN, int64_t hi = INT64_MAX) {
  try {
    return json_int(j, field, lo, hi);
  } catch (const Error& e) {
    throw Error::config(where, e.what());
  }
}

int64_t int_at(const json& j, const char* key, const std::string& where, const std::string& field,
               int64_t lo = INT64_MIN, int64_t hi = INT64_MAX) {
  return int_of(j.at(key), where, field + "." + key, lo, hi);
}

std::vector<int64_t> ints_of(const json& list, const std::string& where, const std::string& field,
                             int64_t lo = INT64_MIN) {
  if (!list.is_array()) throw Error::config(where, field + ": not a list");
  std::vector<int64_t> out;
  for (const auto& x : list) out.push_back(int_of(x, where, field, lo));
  return out;
}

std::vector<int64_t> ints_at(const json& j, const char* key, const std::string& where,
                             const std::string& field, int64_t lo = INT64_MIN) {
  return ints_of(j.at(key), where, field + "." + key, lo);
}

// A map read from a plan file: segments ordered, disjoint, inside the output and the source.
DimMap dimmap_from(const json& j, int64_t source_size, const std::string& where,
                   const std::string& field) {
  DimMap m;
  m.source = j.at("source");
  m.name = j.at("name");
  m.count = int_at(j, "count", where, field, 0, kMaxPlanExtent);
  int64_t next = 0;
  for (const auto& s : j.at("segments")) {
    if (!s.is_array() || s.size() != 4) throw Error::config(where, field + ": bad segment");
    const Segment seg{
        int_of(s[0], where, field, 0, m.count), int_of(s[1], where, field, 1, m.count),
        int_of(s[2], where, field, 0, kMaxPlanExtent), int_of(s[3], where, field, -1, 1)};
    if (seg.out < next || seg.out > m.count - seg.count || seg.step == 0 ||
        seg.src >= source_size || seg.last_src() < 0 || seg.last_src() >= source_size)
      throw Error::config(where,
                          field + ": bad index map segment " + s.dump() + " of '" + m.name + "'");
    next = seg.out + seg.count;
    m.segments.push_back(seg);
  }
  return m;
}

json source_json(const ArrayPlan& a, bool include_manifest) {
  const Variable& v = a.source;
  json codecs = json::array();
  for (const auto& c : v.codecs) codecs.push_back(c.config);
  json s = {{"name", v.name},        {"dims", v.dims},
            {"shape", v.shape},      {"dtype", v.dtype.str()},
            {"codecs", codecs},      {"chunk_shape", v.grid.chunk_shape},
            {"edges", v.grid.edges}, {"missing_chunk_value", v.missing_chunk_value},
            {"origin", v.origin}};
  if (!v.layout_runs.empty()) s["layout_runs"] = layout_runs_json(v.layout_runs);
  if (include_manifest) {
    Region all;
    all.lo.assign(a.ndim(), 0);
    for (std::size_t d = 0; d < a.ndim(); ++d) all.hi.push_back(a.chunks_along(d));
    const std::vector<int64_t> needed = source_chunks_of(a, all);
    s["chunks"] = chunk_refs_json(v.chunks, &needed);
  }
  return s;
}

Variable source_from(const json& s, const std::string& where, const std::string& field) {
  Variable v;
  variable_fields_from(s, v, where, {ErrorKind::Config, field, 1});
  check_source_grid(v, where, field);  // before anything is sized by the grid
  v.chunks.assign(static_cast<std::size_t>(v.grid.num_chunks()), ChunkRef{});
  if (s.contains("chunks")) chunk_refs_from(s["chunks"], v.chunks, where, ErrorKind::Config);
  if (s.contains("layout_runs")) {
    layout_runs_from(s["layout_runs"], v, where);
    if (const std::string fault = v.layout_fault(); !fault.empty())
      throw Error::config(where, field + ".layout_runs: " + fault);
  }
  return v;
}

}  // namespace

namespace {

json codecs_json(const std::vector<CodecSpec>& chain) {
  json out = json::array();
  for (const auto& c : chain) out.push_back(c.config);
  return out;
}

json stored_json(const ArrayPlan& a) {
  if (!a.stored) return nullptr;
  return {{"dims", a.stored->dims},
          {"shape", a.stored->shape},
          {"chunks", a.stored->chunks},
          {"tiled", a.stored->tiled},
          {"tiles_per_chunk", a.stored->tiles_per_chunk},
          {"tile_dim", a.stored->tile_dim},
          {"coarse", a.stored->coarse}};
}

json array_json(const ArrayPlan& a, bool include_manifest) {
  json index = json::array();
  for (const auto& m : a.index) index.push_back(dimmap_json(m));
  return {{"name", a.name},
          {"coordinate", a.coordinate},
          {"dims", a.dims},
          {"shape", a.shape},
          {"chunks", a.chunks},
          {"per_chunk_units", a.per_chunk_units},
          {"index", index},
          {"conversion", a.conversion.to_json()},
          {"file_conversions", file_conversions_json(a)},
          {"fill_value", a.fill_value},
          {"attrs", nonfinite_numbers_to_markers(a.attrs)},
          {"codecs", codecs_json(a.codecs)},
          {"inner_chunks", a.inner_chunks},
          {"stored", stored_json(a)},
          {"append_from", a.append_from},
          {"source", source_json(a, include_manifest)}};
}

// A job's source chunks as [start, count] runs: a job reads blocks of consecutive chunks, and
// P1's plan held 19 MB of chunk numbers listed one by one.
json chunk_runs_json(const std::vector<int64_t>& ids) {
  json out = json::array();
  for (std::size_t k = 0; k < ids.size();) {
    std::size_t n = 1;
    while (k + n < ids.size() && ids[k + n] == ids[k] + static_cast<int64_t>(n)) ++n;
    out.push_back({ids[k], n});
    k += n;
  }
  return out;
}

json jobs_json(const std::vector<Job>& jobs) {
  json out = json::array();
  for (const auto& j : jobs)
    out.push_back({{"id", j.id},
                   {"array", j.array},
                   {"region", {{"lo", j.region.lo}, {"hi", j.region.hi}}},
                   {"source_chunks", chunk_runs_json(j.source_chunks)},
                   {"read_bytes", j.read_bytes},
                   {"output_bytes", j.output_bytes}});
  return out;
}

json summary_json(const Plan& p) {
  const auto& s = p.summary;
  return {{"jobs", p.jobs.size()},
          {"read_bytes", s.read_bytes},
          {"needed_bytes", s.needed_bytes},
          {"read_amplification", s.read_amplification},
          {"peak_memory_per_worker", s.peak_memory},
          {"output_bytes", s.output_bytes},
          {"output_chunks", s.output_chunks},
          {"source_chunks", s.source_chunks}};
}

json recommendations_json(const Plan& p) {
  json recs = json::array();
  for (const auto& r : p.recommendations)
    recs.push_back({{"key", r.key}, {"message", r.message}, {"saves", r.saves}});
  return recs;
}

json notes_json(const Plan& p) {
  json notes = json::array();
  for (const auto& r : p.notes) notes.push_back({{"key", r.key}, {"message", r.message}});
  return notes;
}

}  // namespace

json plan_to_json(const Plan& p, bool include_manifest) {
  json arrays = json::array();
  for (const auto& a : p.arrays) arrays.push_back(array_json(a, include_manifest));
  return {{"format", "zarr-parallel-plan"},
          {"version", kPlanVersion},
          {"config_hash", p.config_hash},
          {"store", p.store},
          {"store_id", p.store_id},
          {"sources", fingerprints_json(p.sources)},
          {"tool_version", p.tool_version},
          {"zarr_format", p.zarr_format},
          {"encoding", p.encoding},
          {"files", p.files},
          {"access", p.access.public_json()},
          {"global_attrs", nonfinite_numbers_to_markers(p.global_attrs)},
          {"workers", p.workers},
          {"threads_per_worker", p.threads_per_worker},
          {"memory_limit", p.memory_limit},
          {"worker_timeout", p.worker_timeout},
          {"summary", summary_json(p)},
          {"recommendations", recommendations_json(p)},
          {"notes", notes_json(p)},
          {"append_dim", p.append_dim},
          {"arrays", std::move(arrays)},
          {"jobs", jobs_json(p.jobs)}};
}

namespace {

// The format and version: 3 (number columns, chunk lists) still loads, so a store started by it
// can be resumed.
void check_version(const json& j, const std::string& where) {
  const int version = j.value("format", "") == "zarr-parallel-plan" ? j.value("version", 0) : 0;
  if (version != 3 && version != kPlanVersion)
    throw Error::config(where,
                        fmt::format("not a zarr-parallel plan of version 3 or {}; it comes "
                                    "from {} zarr-parallel: run `cache` again",
                                    kPlanVersion, version > kPlanVersion ? "a newer" : "an older"));
}

void settings_from(const json& j, Plan& p, const std::string& where) {
  p.config_hash = j.at("config_hash");
  p.store = j.at("store");
  p.store_id = j.value("store_id", "");
  if (j.contains("sources")) p.sources = fingerprints_from(j["sources"]);
  p.tool_version = j.at("tool_version");
  p.zarr_format = static_cast<int>(int_at(j, "zarr_format", where, "plan", 2, 3));
  p.encoding = j.at("encoding");
  p.files = j.at("files").get<std::vector<std::string>>();
  if (j.contains("access")) p.access = AccessOptions::from_public_json(j["access"]);
  p.global_attrs = Attrs::parse(j.at("global_attrs").dump());
  nonfinite_markers_to_numbers(p.global_attrs);
  p.workers = static_cast<int>(int_at(j, "workers", where, "plan", 1, 1'000'000));
  p.threads_per_worker = static_cast<int>(int_at(j, "threads_per_worker", where, "plan", 1, 4096));
  p.memory_limit = int_at(j, "memory_limit", where, "plan", 0);
  p.worker_timeout = int_at(j, "worker_timeout", where, "plan", 0);
  for (const auto& r : j.at("recommendations")) {
    const bool saves = !r.contains("saves") || !r["saves"].is_boolean() || r["saves"].get<bool>();
    p.recommendations.push_back({r.at("key"), r.at("message"), saves});
  }
  if (j.contains("notes"))
    for (const auto& r : j.at("notes")) p.notes.push_back({r.at("key"), r.at("message")});
  if (j.contains("append_dim")) p.append_dim = j.at("append_dim").get<std::string>();
}

void summary_from(const json& s, PlanSummary& out, const std::string& where) {
  const std::string f = "summary";
  out.read_bytes = static_cast<uint64_t>(int_at(s, "read_bytes", where, f, 0));
  out.needed_bytes = static_cast<uint64_t>(int_at(s, "needed_bytes", where, f, 0));
  out.read_amplification = s.at("read_amplification");
  out.peak_memory = static_cast<uint64_t>(int_at(s, "peak_memory_per_worker", where, f, 0));
  out.output_bytes = static_cast<uint64_t>(int_at(s, "output_bytes", where, f, 0));
  out.output_chunks = int_at(s, "output_chunks", where, f, 0);
  out.source_chunks = int_at(s, "source_chunks", where, f, 0);
}

StoredLayout stored_from(const json& st, const ArrayPlan& a, const std::string& where,
                         const std::string& f) {
  StoredLayout l{st.at("dims").get<std::vector<std::string>>(),
                 ints_at(st, "shape", where, f, 0),
                 ints_at(st, "chunks", where, f, 1),
                 st.at("tiled").get<std::vector<bool>>(),
                 st.contains("tiles_per_chunk") ? int_at(st, "tiles_per_chunk", where, f, 1) : 1,
                 {},
                 ints_at(st, "coarse", where, f, 1)};
  for (int64_t t : ints_at(st, "tile_dim", where, f, -1))
    l.tile_dim.push_back(static_cast<int>(std::min<int64_t>(t, INT32_MAX)));
  bool tile_dims_ok = l.tile_dim.size() == l.coarse.size();
  for (std::size_t i = 0; tile_dims_ok && i < l.tile_dim.size(); ++i)
    tile_dims_ok = l.tile_dim[i] < static_cast<int>(a.dims.size());
  if (!tile_dims_ok)
    throw Error::config(where, "stored layout of '" + a.name + "' is inconsistent");
  if (l.tiled.size() != a.dims.size() || l.dims.size() != a.dims.size() + 1 ||
      l.shape.size() != l.dims.size() || l.chunks.size() != l.dims.size() ||
      l.chunks[0] != l.tiles_per_chunk)
    throw Error::config(where, "stored layout of '" + a.name + "' does not match its dimensions");
  return l;
}

// The array's own fields (name, shape, chunks, encoding); its source and index come after.
ArrayPlan array_fields_from(const json& ja, const std::string& where, const std::string& f) {
  ArrayPlan a;
  a.name = ja.at("name");
  a.coordinate = ja.at("coordinate");
  a.dims = ja.at("dims").get<std::vector<std::string>>();
  a.shape = ints_at(ja, "shape", where, f, 0);
  a.chunks = ints_at(ja, "chunks", where, f, 1);
  a.per_chunk_units = ja.at("per_chunk_units").get<std::vector<bool>>();
  a.conversion = Conversion::from_json(ja.at("conversion"));
  for (const auto& fc : ja.value("file_conversions", json::array()))
    a.file_conversions.push_back(
        {static_cast<uint32_t>(int_at(fc, "first_file", where, f, 0, UINT32_MAX)),
         Conversion::from_json(fc.at("conversion"))});
  a.fill_value = ja.at("fill_value");
  a.attrs = Attrs::parse(ja.at("attrs").dump());
  nonfinite_markers_to_numbers(a.attrs);
  for (const auto& c : ja.at("codecs"))
    a.codecs.push_back(codec_spec_from_json(c, where + " codecs"));
  if (ja.contains("append_from")) a.append_from = int_at(ja, "append_from", where, f, 0);
  if (ja.contains("inner_chunks")) a.inner_chunks = ints_at(ja, "inner_chunks", where, f, 1);
  if (ja.contains("stored") && !ja["stored"].is_null())
    a.stored = stored_from(ja["stored"], a, where, f);
  if (a.shape.size() != a.dims.size() || a.chunks.size() != a.dims.size())
    throw Error::config(where,
                        f + ": shape or chunks do not match the dimensions of '" + a.name + "'");
  if (!a.inner_chunks.empty() && a.inner_chunks.size() != a.chunks.size())
    throw Error::config(where, "inner chunks of '" + a.name + "' do not match its dimensions");
  for (std::size_t d = 0; d < a.inner_chunks.size(); ++d)
    if (a.chunks[d] % a.inner_chunks[d] != 0)
      throw Error::config(where, "shards of '" + a.name + "' are not whole inner chunks");
  return a;
}

ArrayPlan array_from(const json& ja, const std::string& where, const std::string& f) {
  ArrayPlan a = array_fields_from(ja, where, f);
  a.source = source_from(ja.at("source"), where, f + ".source");
  const json& index = ja.at("index");
  if (!index.is_array() || index.size() != a.source.ndim() || a.shape.size() != a.source.ndim())
    throw Error::config(where, "index map of '" + a.name + "' does not match its source");
  for (std::size_t d = 0; d < index.size(); ++d) {
    a.index.push_back(
        dimmap_from(index[d], a.source.shape[d], where, fmt::format("{}.index[{}]", f, d)));
    if (a.index.back().count != a.shape[d])
      throw Error::config(where, "index map of '" + a.name + "' does not match its shape");
  }
  return a;
}

// A job; its source chunk runs are expanded only within its array's source grid (a run of 2^40
// would otherwise be 8 TB of numbers).
Job job_from(const json& jj, const std::vector<ArrayPlan>& arrays, const std::string& where,
             const std::string& f) {
  Job job;
  job.id = int_at(jj, "id", where, f, 0);
  const int64_t n_arrays = static_cast<int64_t>(arrays.size());
  job.array =
      static_cast<int>(int_at(jj, "array", where, f, 0, std::max<int64_t>(n_arrays - 1, 0)));
  if (job.array >= n_arrays) throw Error::config(where, f + ".array: names no array");
  const int64_t grid = arrays[static_cast<std::size_t>(job.array)].source.grid.num_chunks();
  job.region.lo = ints_at(jj.at("region"), "lo", where, f + ".region", 0);
  job.region.hi = ints_at(jj.at("region"), "hi", where, f + ".region", 0);
  for (const auto& x : jj.at("source_chunks")) {
    if (!x.is_array()) {  // version 3: one number a chunk
      job.source_chunks.push_back(int_of(x, where, f + ".source_chunks", 0, grid - 1));
      continue;
    }
    if (x.size() != 2) throw Error::config(where, f + ".source_chunks: not [start, count]");
    const int64_t start = int_of(x[0], where, f + ".source_chunks", 0, grid);
    const int64_t count = int_of(x[1], where, f + ".source_chunks", 0, grid - start);
    if (job.source_chunks.size() + static_cast<std::size_t>(count) > static_cast<std::size_t>(grid))
      throw Error::config(where, f + ".source_chunks: more chunks than its source has");
    for (int64_t k = 0; k < count; ++k) job.source_chunks.push_back(start + k);
  }
  job.read_bytes = static_cast<uint64_t>(int_at(jj, "read_bytes", where, f, 0));
  job.output_bytes = static_cast<uint64_t>(int_at(jj, "output_bytes", where, f, 0));
  return job;
}

}  // namespace

Plan plan_from_json(const json& j, const std::string& where) {
  try {
    check_version(j, where);
    Plan p;
    settings_from(j, p, where);
    summary_from(j.at("summary"), p.summary, where);
    const json& arrays = j.at("arrays");
    for (std::size_t i = 0; i < arrays.size(); ++i)
      p.arrays.push_back(array_from(arrays.at(i), where, fmt::format("arrays[{}]", i)));
    const json& jobs = j.at("jobs");
    for (std::size_t i = 0; i < jobs.size(); ++i)
      p.jobs.push_back(job_from(jobs.at(i), p.arrays, where, fmt::format("jobs[{}]", i)));
    check_plan(p, where);
    return p;
  } catch (const json::exception& e) {
    throw Error::config(where, std::string("malformed plan: ") + e.what());
  }
}

std::string store_root_of_plan(const std::string& plan_path) {
  namespace fs = std::filesystem;
  if (plan_path.empty()) return "";
  const fs::path side = fs::absolute(plan_path).lexically_normal().parent_path();
  if (side.filename() != ".zarr-parallel") return "";
  return side.parent_path().string();
}

namespace {

// The plan file's text; one in a store is read inside it (no link followed: FileStore).
std::string read_plan_text(const std::string& path, const std::string& root) {
  std::optional<std::string> text;
  if (!root.empty()) {
    text = FileStore(root).get(std::string(".zarr-parallel/") +
                               std::filesystem::path(path).filename().string());
  } else if (std::ifstream in(path); in) {
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  if (!text) throw Error::config(path, "cannot read plan file");
  return *text;
}

// The store recorded the plan's SHA-256 when it was started (state.json; older stores did not):
// a plan edited since, even into one that parses, is refused.
void check_plan_digest(const std::string& root, const std::string& path, const std::string& text) {
  const auto state = FileStore(root).get(".zarr-parallel/state.json");
  if (!state) return;
  const json s = json::parse(*state, nullptr, false);
  if (!s.is_object() || !s.contains("plan_sha256") || !s["plan_sha256"].is_string()) return;
  if (s["plan_sha256"].get<std::string>() != sha256_hex(text))
    throw Error::store(root, "its saved plan " + path +
                                 " is not the plan the store was started with (its SHA-256 "
                                 "differs from the one in state.json: damaged or edited); "
                                 "zarr-parallel cannot tell which files in the store it wrote, "
                                 "and deletes none: remove the store yourself to rebuild it");
}

// The digest the coordinator handed this worker, when it handed one.
void check_handed_digest(const std::string& where, const std::string& text,
                         const std::string& expected) {
  if (!expected.empty() && sha256_hex(text) != expected)
    throw Error::store(where,
                       "its plan file changed after the run's coordinator read it (its "
                       "SHA-256 is not the one the coordinator handed this worker): "
                       "edited by someone else; this worker runs none of it");
}

}  // namespace

Plan plan_from_text(const std::string& text, const std::string& path) {
  if (json_too_deep(text)) throw Error::config(path, "plan nested too deep: not a plan");
  json j;
  try {
    j = json::parse(nonfinite_tokens_to_markers(text));  // `plan --json` prints bare NaN
  } catch (const json::exception& e) {
    throw Error::config(path, std::string("plan is not JSON: ") + e.what());
  }
  return plan_from_json(j, path);
}

Plan load_plan(const std::string& path, const std::string& expected_sha256,
               std::string* text_sha256) {
  if (!store_root_of_plan(path).empty()) return load_store_plan(path, expected_sha256, text_sha256);
  const std::string text = read_plan_text(path, "");
  check_handed_digest(path, text, expected_sha256);
  Plan p = plan_from_text(text, path);
  if (text_sha256) *text_sha256 = sha256_hex(text);
  return p;
}

Plan load_store_plan(const std::string& path, const std::string& expected_sha256,
                     std::string* text_sha256) {
  const std::string root = store_root_of_plan(path);
  try {
    const std::string text = read_plan_text(path, root);
    check_handed_digest(root.empty() ? path : root, text, expected_sha256);
    // The digest is of plan.json (another plan copied into the side folder meets the store id
    // check instead).
    if (!root.empty() && std::filesystem::path(path).filename() == "plan.json")
      check_plan_digest(root, path, text);
    Plan p = plan_from_text(text, path);
    if (text_sha256) *text_sha256 = sha256_hex(text);
    if (!root.empty()) p.store = root;
    return p;
  } catch (const Error& e) {
    if (e.kind() == ErrorKind::Store || e.kind() == ErrorKind::Interrupted) throw;
    std::string why = e.what();
    const std::string prefix = "config key '" + path + "': ";
    if (why.rfind(prefix, 0) == 0) why = why.substr(prefix.size());
    throw Error::store(root.empty() ? path : root,
                       "its saved plan " + path + " cannot be read (" + why +
                           "); without it zarr-parallel cannot tell which files in the store "
                           "it wrote, and deletes none: remove the store yourself to rebuild it");
  }
}

}  // namespace zp
