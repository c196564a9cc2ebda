#include "plan/plan_json.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.hpp"
#include "core/json_limits.hpp"
#include "core/json_nonfinite.hpp"
#include "plan/units.hpp"
#include "source/dataset_json.hpp"
#include "source/kerchunk_template.hpp"

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

// A map read from a plan file: segments ordered, disjoint, inside the output and the source.
DimMap dimmap_from(const json& j, int64_t source_size, const std::string& where) {
  DimMap m;
  m.source = j.at("source");
  m.name = j.at("name");
  m.count = j.at("count");
  int64_t next = 0;
  for (const auto& s : j.at("segments")) {
    const Segment seg{s.at(0), s.at(1), s.at(2), s.at(3)};
    const int64_t last_src = seg.last_src();
    if (seg.out < next || seg.count <= 0 || seg.out > m.count - seg.count ||
        (seg.step != 1 && seg.step != -1) || seg.src < 0 || seg.src >= source_size ||
        last_src < 0 || last_src >= source_size)
      throw Error::config(where, "bad index map segment " + s.dump() + " of '" + m.name + "'");
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
  if (include_manifest) {
    Region all;
    all.lo.assign(a.ndim(), 0);
    for (std::size_t d = 0; d < a.ndim(); ++d) all.hi.push_back(a.chunks_along(d));
    const std::vector<int64_t> needed = source_chunks_of(a, all);
    s["chunks"] = chunk_refs_json(v.chunks, &needed);
  }
  return s;
}

Variable source_from(const json& s, const std::string& where) {
  Variable v;
  v.name = s.at("name");
  v.dims = s.at("dims").get<std::vector<std::string>>();
  v.shape = s.at("shape").get<std::vector<int64_t>>();
  v.dtype = DType::parse(s.at("dtype"));
  for (const auto& c : s.at("codecs")) v.codecs.push_back(codec_spec_from_json(c, where));
  v.grid.chunk_shape = s.at("chunk_shape").get<std::vector<int64_t>>();
  v.grid.edges = s.at("edges").get<std::vector<std::vector<int64_t>>>();
  v.missing_chunk_value = s.at("missing_chunk_value");
  v.origin = s.value("origin", "");
  v.chunks.assign(static_cast<std::size_t>(v.grid.num_chunks()), ChunkRef{});
  if (s.contains("chunks")) chunk_refs_from(s["chunks"], v.chunks, where, ErrorKind::Config);
  return v;
}

}  // namespace

static json codecs_json(const std::vector<CodecSpec>& chain) {
  json out = json::array();
  for (const auto& c : chain) out.push_back(c.config);
  return out;
}

json plan_to_json(const Plan& p, bool include_manifest) {
  json arrays = json::array();
  for (const auto& a : p.arrays) {
    json index = json::array();
    for (const auto& m : a.index) index.push_back(dimmap_json(m));
    arrays.push_back({{"name", a.name},
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
                      {"stored", a.stored ? json{{"dims", a.stored->dims},
                                                 {"shape", a.stored->shape},
                                                 {"chunks", a.stored->chunks},
                                                 {"tiled", a.stored->tiled},
                                                 {"tiles_per_chunk", a.stored->tiles_per_chunk},
                                                 {"tile_dim", a.stored->tile_dim},
                                                 {"coarse", a.stored->coarse}}
                                          : json(nullptr)},
                      {"source", source_json(a, include_manifest)}});
  }
  // A job's source chunks as [start, count] runs: a job reads blocks of consecutive chunks, and
  // P1's plan held 19 MB of chunk numbers listed one by one.
  auto runs = [](const std::vector<int64_t>& ids) {
    json out = json::array();
    for (std::size_t k = 0; k < ids.size();) {
      std::size_t n = 1;
      while (k + n < ids.size() && ids[k + n] == ids[k] + static_cast<int64_t>(n)) ++n;
      out.push_back({ids[k], n});
      k += n;
    }
    return out;
  };
  json jobs = json::array();
  for (const auto& j : p.jobs)
    jobs.push_back({{"id", j.id},
                    {"array", j.array},
                    {"region", {{"lo", j.region.lo}, {"hi", j.region.hi}}},
                    {"source_chunks", runs(j.source_chunks)},
                    {"read_bytes", j.read_bytes},
                    {"output_bytes", j.output_bytes}});
  json recs = json::array();
  for (const auto& r : p.recommendations) recs.push_back({{"key", r.key}, {"message", r.message}});
  json notes = json::array();
  for (const auto& r : p.notes) notes.push_back({{"key", r.key}, {"message", r.message}});
  const auto& s = p.summary;
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
          {"summary",
           {{"jobs", p.jobs.size()},
            {"read_bytes", s.read_bytes},
            {"needed_bytes", s.needed_bytes},
            {"read_amplification", s.read_amplification},
            {"peak_memory_per_worker", s.peak_memory},
            {"output_bytes", s.output_bytes},
            {"output_chunks", s.output_chunks},
            {"source_chunks", s.source_chunks}}},
          {"recommendations", recs},
          {"notes", notes},
          {"arrays", arrays},
          {"jobs", jobs}};
}

Plan plan_from_json(const json& j, const std::string& where) {
  try {
    // Version 3 (number columns, chunk lists) still loads: a store started by it can be resumed.
    const int version = j.value("format", "") == "zarr-parallel-plan" ? j.value("version", 0) : 0;
    if (version != 3 && version != kPlanVersion)
      throw Error::config(
          where, fmt::format("not a zarr-parallel plan of version 3 or {}; it comes from "
                             "{} zarr-parallel: run `cache` again",
                             kPlanVersion, version > kPlanVersion ? "a newer" : "an older"));
    Plan p;
    p.config_hash = j.at("config_hash");
    p.store = j.at("store");
    p.store_id = j.value("store_id", "");
    if (j.contains("sources")) p.sources = fingerprints_from(j["sources"]);
    p.tool_version = j.at("tool_version");
    p.zarr_format = j.at("zarr_format");
    p.encoding = j.at("encoding");
    p.files = j.at("files").get<std::vector<std::string>>();
    if (j.contains("access")) p.access = AccessOptions::from_public_json(j["access"]);
    p.global_attrs = Attrs::parse(j.at("global_attrs").dump());
    nonfinite_markers_to_numbers(p.global_attrs);
    p.workers = j.at("workers");
    p.threads_per_worker = j.at("threads_per_worker");
    p.memory_limit = j.at("memory_limit");
    p.worker_timeout = j.at("worker_timeout");
    const json& s = j.at("summary");
    p.summary.read_bytes = s.at("read_bytes");
    p.summary.needed_bytes = s.at("needed_bytes");
    p.summary.read_amplification = s.at("read_amplification");
    p.summary.peak_memory = s.at("peak_memory_per_worker");
    p.summary.output_bytes = s.at("output_bytes");
    p.summary.output_chunks = s.at("output_chunks");
    p.summary.source_chunks = s.at("source_chunks");
    for (const auto& r : j.at("recommendations"))
      p.recommendations.push_back({r.at("key"), r.at("message")});
    if (j.contains("notes"))
      for (const auto& r : j.at("notes")) p.notes.push_back({r.at("key"), r.at("message")});
    for (const auto& ja : j.at("arrays")) {
      ArrayPlan a;
      a.name = ja.at("name");
      a.coordinate = ja.at("coordinate");
      a.dims = ja.at("dims").get<std::vector<std::string>>();
      a.shape = ja.at("shape").get<std::vector<int64_t>>();
      a.chunks = ja.at("chunks").get<std::vector<int64_t>>();
      a.per_chunk_units = ja.at("per_chunk_units").get<std::vector<bool>>();
      a.conversion = Conversion::from_json(ja.at("conversion"));
      for (const auto& fc : ja.value("file_conversions", json::array()))
        a.file_conversions.push_back(
            {fc.at("first_file").get<uint32_t>(), Conversion::from_json(fc.at("conversion"))});
      a.fill_value = ja.at("fill_value");
      a.attrs = Attrs::parse(ja.at("attrs").dump());
      nonfinite_markers_to_numbers(a.attrs);
      for (const auto& c : ja.at("codecs"))
        a.codecs.push_back(codec_spec_from_json(c, where + " codecs"));
      a.inner_chunks = ja.value("inner_chunks", std::vector<int64_t>{});
      if (ja.contains("stored") && !ja["stored"].is_null()) {
        const json& st = ja["stored"];
        a.stored = StoredLayout{st.at("dims").get<std::vector<std::string>>(),
                                st.at("shape").get<std::vector<int64_t>>(),
                                st.at("chunks").get<std::vector<int64_t>>(),
                                st.at("tiled").get<std::vector<bool>>(),
                                st.value("tiles_per_chunk", int64_t{1}),
                                st.at("tile_dim").get<std::vector<int>>(),
                                st.at("coarse").get<std::vector<int64_t>>()};
        bool tile_dims_ok = a.stored->tile_dim.size() == a.stored->coarse.size();
        for (std::size_t i = 0; tile_dims_ok && i < a.stored->tile_dim.size(); ++i)
          tile_dims_ok = a.stored->tile_dim[i] >= -1 &&
                         a.stored->tile_dim[i] < static_cast<int>(a.dims.size()) &&
                         a.stored->coarse[i] >= 1;
        if (!tile_dims_ok)
          throw Error::config(where, "stored layout of '" + a.name + "' is inconsistent");
        if (a.stored->tiled.size() != a.dims.size() || a.stored->dims.size() != a.dims.size() + 1 ||
            a.stored->shape.size() != a.stored->dims.size() ||
            a.stored->chunks.size() != a.stored->dims.size() || a.stored->tiles_per_chunk < 1 ||
            a.stored->chunks[0] != a.stored->tiles_per_chunk)
          throw Error::config(where,
                              "stored layout of '" + a.name + "' does not match its dimensions");
      }
      if (!a.inner_chunks.empty() && a.inner_chunks.size() != a.chunks.size())
        throw Error::config(where, "inner chunks of '" + a.name + "' do not match its dimensions");
      for (std::size_t d = 0; d < a.inner_chunks.size(); ++d)
        if (a.inner_chunks[d] < 1 || a.chunks[d] % a.inner_chunks[d] != 0)
          throw Error::config(where, "shards of '" + a.name + "' are not whole inner chunks");
      a.source = source_from(ja.at("source"), where);
      const json& index = ja.at("index");
      if (index.size() != a.source.ndim() || a.shape.size() != a.source.ndim())
        throw Error::config(where, "index map of '" + a.name + "' does not match its source");
      for (std::size_t d = 0; d < index.size(); ++d) {
        a.index.push_back(dimmap_from(index[d], a.source.shape[d], where));
        if (a.index.back().count != a.shape[d])
          throw Error::config(where, "index map of '" + a.name + "' does not match its shape");
      }
      p.arrays.push_back(std::move(a));
    }
    for (const auto& jj : j.at("jobs")) {
      Job job;
      job.id = jj.at("id");
      job.array = jj.at("array");
      job.region.lo = jj.at("region").at("lo").get<std::vector<int64_t>>();
      job.region.hi = jj.at("region").at("hi").get<std::vector<int64_t>>();
      for (const auto& x : jj.at("source_chunks")) {
        if (!x.is_array()) {  // version 3: one number a chunk
          job.source_chunks.push_back(x.get<int64_t>());
          continue;
        }
        const int64_t start = x.at(0), count = x.at(1);
        if (start < 0 || count < 0 || count > (int64_t{1} << 40))
          throw Error::config(where, "job " + std::to_string(job.id) + ": bad source chunk run");
        for (int64_t k = 0; k < count; ++k) job.source_chunks.push_back(start + k);
      }
      job.read_bytes = jj.at("read_bytes");
      job.output_bytes = jj.at("output_bytes");
      if (job.array < 0 || static_cast<std::size_t>(job.array) >= p.arrays.size())
        throw Error::config(where, "job " + std::to_string(job.id) + " names no array");
      p.jobs.push_back(std::move(job));
    }
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

Plan load_plan(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error::config(path, "cannot read plan file");
  std::stringstream ss;
  ss << in.rdbuf();
  json j;
  if (json_too_deep(ss.str())) throw Error::config(path, "plan nested too deep: not a plan");
  try {
    j = json::parse(nonfinite_tokens_to_markers(ss.str()));  // `plan --json` prints bare NaN
  } catch (const json::exception& e) {
    throw Error::config(path, std::string("plan is not JSON: ") + e.what());
  }
  Plan p = plan_from_json(j, path);
  if (const std::string root = store_root_of_plan(path); !root.empty()) p.store = root;
  return p;
}

Plan load_store_plan(const std::string& path) {
  try {
    return load_plan(path);
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Config) throw;
    std::string why = e.what();
    const std::string prefix = "config key '" + path + "': ";
    if (why.rfind(prefix, 0) == 0) why = why.substr(prefix.size());
    const std::string root = store_root_of_plan(path);
    throw Error::store(root.empty() ? path : root,
                       "its saved plan " + path + " cannot be read (" + why +
                           "); without it zarr-parallel cannot tell which files in the store "
                           "it wrote, and deletes none: remove the store yourself to rebuild it");
  }
}

}  // namespace zp
