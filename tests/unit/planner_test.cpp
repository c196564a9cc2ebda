// Planner properties on many generated shapes, checked against brute force.
#include "plan/planner.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <set>

#include "core/error.hpp"
#include "plan/append_plan.hpp"
#include "plan/plan_json.hpp"
#include "plan/units.hpp"
#include "test_dataset.hpp"
#include "transform/element_transform.hpp"
#include "write/copy_region.hpp"
#include "write/job_runner.hpp"

namespace zp {
namespace {

struct Case {
  Dataset ds;
  Selection sel;
  Config cfg;
  PlanOptions opt;
};

Case random_case(std::mt19937& rng, bool aligned) {
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  const std::size_t nd = static_cast<std::size_t>(pick(1, 3));
  std::vector<int64_t> shape, chunks;
  for (std::size_t d = 0; d < nd; ++d) {
    chunks.push_back(pick(1, 7));
    shape.push_back(pick(1, 40));
  }
  Case c;
  c.ds = testing::make_dataset(shape, chunks);
  for (std::size_t d = 0; d < nd; ++d) {
    int64_t start, count;
    if (aligned) {
      const int64_t nchunks = (shape[d] + chunks[d] - 1) / chunks[d];
      const int64_t first = pick(0, nchunks - 1), last = pick(first, nchunks - 1);
      start = first * chunks[d];
      count = std::min((last + 1) * chunks[d], shape[d]) - start;
    } else {
      start = pick(0, shape[d] - 1);
      count = pick(1, shape[d] - start);
    }
    DimMap m = DimMap::linear(c.ds.dims[d].name, c.ds.dims[d].name, start, count, 1);
    if (pick(0, 2) == 0) m = m.reversed();
    // A roll: by whole source chunks when aligned (then every chunk is still read once).
    if (!aligned && pick(0, 2) == 0) m = m.rolled(pick(-count, 2 * count));
    if (aligned && count % chunks[d] == 0 && pick(0, 2) == 0) m = m.rolled(chunks[d] * pick(0, 3));
    // Tile padding: the map runs past its segments; the gap reads as the fill value.
    if (!aligned && pick(0, 3) == 0) m.count += pick(1, 9);
    c.sel.dims.push_back(m);
  }
  c.cfg.chunks_auto = false;
  for (std::size_t d = 0; d < nd; ++d) {
    int64_t oc = pick(1, 12);
    if (aligned) oc = chunks[d] * pick(1, 3);
    c.cfg.chunks.emplace_back(c.ds.dims[d].name, oc);
  }
  c.cfg.compressor = nullptr;
  c.opt.workers = static_cast<int>(pick(1, 4));
  c.opt.threads_per_worker = static_cast<int>(pick(1, 2));
  c.opt.memory_limit =
      aligned ? (1ll << 31) : static_cast<int64_t>(kWorkerBaseBytes) + pick(200, 20000);
  if (pick(0, 3) == 0) c.opt.num_jobs = pick(1, 10);
  return c;
}

// Source chunk of every output element, by brute force over the index map.
std::set<int64_t> needed_chunks(const ArrayPlan& a, const Region& region) {
  std::set<int64_t> out;
  const std::size_t nd = a.ndim();
  std::vector<int64_t> lo(nd), hi(nd), i(nd);
  for (std::size_t d = 0; d < nd; ++d) {
    lo[d] = region.lo[d] * a.chunks[d];
    hi[d] = std::min(region.hi[d] * a.chunks[d], a.shape[d]);
    i[d] = lo[d];
  }
  for (;;) {
    std::vector<int64_t> c(nd);
    bool gap = false;
    for (std::size_t d = 0; d < nd && !gap; ++d) {
      const auto p = a.index[d].pieces(i[d], i[d] + 1);
      if (p.empty()) {
        gap = true;
      } else {
        c[d] = a.source.grid.chunk_of(d, p[0].src);
      }
    }
    if (!gap) out.insert(a.source.grid.linear_index(c));
    std::size_t d = nd;
    while (d > 0 && ++i[d - 1] == hi[d - 1]) i[d - 1] = lo[d - 1], --d;
    if (d == 0) return out;
  }
}

void check_plan_properties(const Case& c, const Plan& p, bool aligned) {
  const ArrayPlan& a = p.arrays[0];
  // Every output chunk in exactly one job.
  std::map<std::vector<int64_t>, int> owner;
  for (const Job& j : p.jobs) {
    std::vector<int64_t> k = j.region.lo;
    for (;;) {
      EXPECT_EQ(owner[k]++, 0) << "output chunk in two jobs";
      std::size_t d = a.ndim();
      while (d > 0 && ++k[d - 1] == j.region.hi[d - 1]) k[d - 1] = j.region.lo[d - 1], --d;
      if (d == 0) break;
    }
  }
  EXPECT_EQ(static_cast<int64_t>(owner.size()), a.num_chunks());
  // Each job's source chunks are exactly what its elements need; jobs share none when the units
  // read each chunk once.
  std::map<int64_t, int> readers;
  for (const Job& j : p.jobs) {
    const auto need = needed_chunks(a, j.region);
    EXPECT_EQ(std::set<int64_t>(j.source_chunks.begin(), j.source_chunks.end()), need);
    for (int64_t s : need) ++readers[s];
  }
  const bool whole_units =
      std::none_of(a.per_chunk_units.begin(), a.per_chunk_units.end(), [](bool b) { return b; });
  // A roll that does not fall on a source chunk edge splits that chunk between the two ends of
  // the output: it may be read by two units, and no more.
  int seams = 0;
  for (const auto& m : a.index) seams += m.segments.size() > 1 ? 1 : 0;
  if (whole_units) {
    if (seams == 0) {
      EXPECT_DOUBLE_EQ(p.summary.read_amplification, 1.0);
    }
    for (const auto& [s, n] : readers)
      EXPECT_LE(n, seams == 0 ? 1 : 1 << seams)
          << "source chunk " << s << " read by " << n << " jobs";
  }
  if (aligned) {
    EXPECT_DOUBLE_EQ(p.summary.read_amplification, 1.0);
  }
  EXPECT_GE(p.summary.read_amplification, 1.0);
  EXPECT_LE(p.summary.peak_memory, static_cast<uint64_t>(c.opt.memory_limit));
  // At least one job per worker whenever there are enough units.
  int64_t units = 1;
  for (std::size_t d = 0; d < a.ndim(); ++d) units *= dim_units(a, d, a.per_chunk_units[d]).count();
  if (c.opt.num_jobs == 0) {
    EXPECT_GE(static_cast<int64_t>(p.jobs.size()), std::min<int64_t>(c.opt.workers, units));
  }
}

// copies_cover_chunk against every element of every output chunk: inside the array and read
// from the source by some segment of the index map.
void check_cover(const ArrayPlan& a) {
  Region all;
  all.lo.assign(a.ndim(), 0);
  for (std::size_t d = 0; d < a.ndim(); ++d) all.hi.push_back(a.chunks_along(d));
  for (const auto& chunk : chunks_in(all)) {
    bool want = true;
    for (std::size_t d = 0; d < a.ndim(); ++d)
      for (int64_t i = chunk[d] * a.chunks[d]; i < (chunk[d] + 1) * a.chunks[d]; ++i) {
        bool mapped = false;
        for (const auto& s : a.index[d].segments) mapped |= i >= s.out && i < s.out + s.count;
        want &= i < a.shape[d] && mapped;
      }
    EXPECT_EQ(copies_cover_chunk(a, chunk), want);
  }
}

// copy_into_output against brute force: every output chunk assembled from every source chunk
// (each element holding a value of its source position; cells past a source edge hold -2) equals
// the index map applied element by element, and untouched elements keep the sentinel -1. A source
// chunk with a whole-run offset is placed as the engine decodes it, the whole chunk at that
// offset: a wrong offset, or one given for a chunk that does not land whole, fails the same
// comparison. Returns the number of such direct placements.
int check_copies(const ArrayPlan& a) {
  int direct = 0;
  const std::size_t nd = a.ndim();
  auto value_of = [&](const std::vector<int64_t>& src) {
    int64_t lin = 0;
    for (std::size_t d = 0; d < nd; ++d) lin = lin * a.source.shape[d] + src[d];
    return static_cast<int16_t>((lin * 31 + 7) % 32749);
  };
  const ChunkGrid& g = a.source.grid;
  std::vector<std::vector<int16_t>> sources(static_cast<std::size_t>(g.num_chunks()));
  for (int64_t c = 0; c < g.num_chunks(); ++c) {
    const auto cc = g.coords(c);
    int64_t n = 1;
    for (auto s : g.chunk_shape) n *= s;
    auto& buf = sources[static_cast<std::size_t>(c)];
    buf.assign(static_cast<std::size_t>(n), -2);
    for (int64_t e = 0; e < n; ++e) {
      std::vector<int64_t> pos(nd);
      int64_t rest = e;
      bool inside = true;
      for (std::size_t d = nd; d-- > 0;) {
        pos[d] = g.edges[d][static_cast<std::size_t>(cc[d])] + rest % g.chunk_shape[d];
        rest /= g.chunk_shape[d];
        inside &= pos[d] < g.edges[d][static_cast<std::size_t>(cc[d]) + 1];
      }
      if (inside) buf[static_cast<std::size_t>(e)] = value_of(pos);
    }
  }
  Region all;
  all.lo.assign(nd, 0);
  for (std::size_t d = 0; d < nd; ++d) all.hi.push_back(a.chunks_along(d));
  for (const auto& chunk : chunks_in(all)) {
    int64_t n = 1;
    for (auto c : a.chunks) n *= c;
    std::vector<int16_t> out(static_cast<std::size_t>(n), -1);
    int64_t copied = 0;
    // Direct placements last, so that bytes one writes beyond its own elements are not
    // overwritten by another source chunk's copy.
    std::vector<std::pair<std::size_t, const std::vector<int16_t>*>> placed;
    for (int64_t c = 0; c < g.num_chunks(); ++c) {
      const auto& src = sources[static_cast<std::size_t>(c)];
      const ChunkCopy cp(a, chunk, g.coords(c));
      if (const auto at = cp.whole_run_offset()) {
        if (*at + src.size() * sizeof(int16_t) > out.size() * sizeof(int16_t)) {
          ADD_FAILURE() << "a whole-run offset past the output chunk";
          return direct;
        }
        placed.emplace_back(*at, &src);
        copied += cp.elements();
        continue;
      }
      copied += copy_into_output(a, chunk, reinterpret_cast<unsigned char*>(out.data()),
                                 g.coords(c), reinterpret_cast<const unsigned char*>(src.data()));
    }
    for (const auto& [at, src] : placed) {
      std::memcpy(reinterpret_cast<unsigned char*>(out.data()) + at, src->data(),
                  src->size() * sizeof(int16_t));
      ++direct;
    }
    int64_t mapped = 0;
    for (int64_t e = 0; e < n; ++e) {
      std::vector<int64_t> src(nd);
      int64_t rest = e;
      bool inside = true;
      for (std::size_t d = nd; d-- > 0;) {
        const int64_t i = chunk[d] * a.chunks[d] + rest % a.chunks[d];
        rest /= a.chunks[d];
        const auto p = i < a.shape[d] ? a.index[d].pieces(i, i + 1) : std::vector<Segment>{};
        if (p.empty()) {
          inside = false;
        } else {
          src[d] = p[0].src;
        }
      }
      const int16_t want = inside ? value_of(src) : -1;
      mapped += inside ? 1 : 0;
      if (out[static_cast<std::size_t>(e)] != want) {
        ADD_FAILURE() << "element " << e << ": " << out[static_cast<std::size_t>(e)] << ", want "
                      << want;
        return direct;
      }
    }
    EXPECT_EQ(copied, mapped);
  }
  return direct;
}

TEST(Planner, PropertiesHoldOnGeneratedShapes) {
  std::mt19937 rng(12345);
  int planned = 0, too_small = 0, direct = 0;
  for (int iter = 0; iter < 600; ++iter) {
    const bool aligned = iter % 3 == 0;
    const Case c = random_case(rng, aligned);
    Plan p;
    try {
      p.arrays = build_arrays(c.ds, c.sel, c.cfg);
      plan_jobs(p, c.opt);
    } catch (const Error& e) {
      ASSERT_EQ(e.kind(), ErrorKind::Config) << e.what();
      ASSERT_FALSE(aligned);
      ++too_small;
      continue;
    }
    ++planned;
    SCOPED_TRACE(plan_to_json(p, false).dump());
    check_plan_properties(c, p, aligned);
    check_cover(p.arrays[0]);
    direct += check_copies(p.arrays[0]);
  }
  EXPECT_GT(planned, 450);
  EXPECT_GT(direct, 100);   // chunks decoded straight into place are among them
  EXPECT_GT(too_small, 0);  // the generator also reaches limits below one chunk
}

TEST(Planner, TightMemoryBreaksUnitsAndReportsRereads) {
  // Source chunks span the whole time axis; output chunks are one step each.
  Case c;
  c.ds = testing::make_dataset({100, 10}, {100, 10});
  c.sel = apply_preprocessors(c.ds, testing::index_coordinates(c.ds), {});
  c.cfg.chunks_auto = false;
  c.cfg.chunks = {{"d0", 1}, {"d1", 10}};
  c.cfg.compressor = nullptr;
  c.opt.memory_limit = static_cast<int64_t>(kWorkerBaseBytes) + 3000;
  Plan p;
  p.arrays = build_arrays(c.ds, c.sel, c.cfg);
  plan_jobs(p, c.opt);
  EXPECT_TRUE(p.arrays[0].per_chunk_units[0]);
  EXPECT_GT(p.summary.read_amplification, 1.0);
  EXPECT_LE(p.summary.peak_memory, static_cast<uint64_t>(c.opt.memory_limit));
  c.opt.memory_limit = 1ll << 31;
  plan_jobs(p, c.opt);
  EXPECT_DOUBLE_EQ(p.summary.read_amplification, 1.0);
}

TEST(Planner, AutoJobsAreFewButOnePerWorker) {
  Case c;
  c.ds = testing::make_dataset({96, 73, 144}, {24, 19, 36});
  c.sel = apply_preprocessors(c.ds, testing::index_coordinates(c.ds), {});
  c.cfg.chunks_auto = false;  // the source chunks as they are (auto would grow these small ones)
  c.cfg.chunks = {{"d0", 24}, {"d1", 19}, {"d2", 36}};
  c.cfg.compressor = nullptr;
  c.opt.workers = 3;
  Plan p;
  p.arrays = build_arrays(c.ds, c.sel, c.cfg);
  plan_jobs(p, c.opt);
  EXPECT_EQ(p.jobs.size(), 3u);
  c.opt.num_jobs = 8;
  plan_jobs(p, c.opt);
  EXPECT_GE(p.jobs.size(), 8u);
}

// Issue 34: up to 8 jobs a worker slot when each still writes 128 MiB, so that a slow or retried
// job is an eighth of a worker's share; fewer when the work is small; num_jobs as given.
TEST(Planner, AutoJobsAreUpToEightPerWorkerWhenTheWorkAllows) {
  Case c;
  c.ds = testing::make_dataset({2000, 721, 1440}, {24, 721, 1440});  // 4.2 GB written (int16)
  c.sel = apply_preprocessors(c.ds, testing::index_coordinates(c.ds), {});
  c.cfg.chunks_auto = false;
  c.cfg.chunks = {{"d0", 24}, {"d1", 721}, {"d2", 1440}};
  c.cfg.compressor = nullptr;
  c.opt.workers = 4;
  Plan p;
  p.arrays = build_arrays(c.ds, c.sel, c.cfg);
  plan_jobs(p, c.opt);
  // 4.15 GB / 128 MiB = 30 jobs, in whole rounds of 4 workers: 28 (session 14: 16, 4 a slot)
  EXPECT_EQ(p.jobs.size(), 28u);
  std::set<int64_t> read;
  for (const auto& j : p.jobs) {
    EXPECT_GE(j.output_bytes, uint64_t{128} << 20);
    EXPECT_LE(j.output_bytes, static_cast<uint64_t>(c.opt.memory_limit));
    for (const auto s : j.source_chunks) EXPECT_TRUE(read.insert(s).second) << "read twice";
  }
  EXPECT_DOUBLE_EQ(p.summary.read_amplification, 1.0);
  c.opt.workers = 40;  // 104 MB a slot: one job each (two would be under 128 MiB)
  plan_jobs(p, c.opt);
  EXPECT_EQ(p.jobs.size(), 40u);
  c.opt.num_jobs = 6;
  plan_jobs(p, c.opt);
  EXPECT_EQ(p.jobs.size(), 6u);
}

TEST(Planner, EmptyArraysGetMetadataOnlyAndCoordinatesAreNotDuplicated) {
  Dataset ds = testing::make_dataset({0, 4}, {1, 4});
  ds.variables.push_back(testing::make_variable("d1", {"d1"}, {4}, {4}));
  const Selection sel = apply_preprocessors(ds, testing::index_coordinates(ds), {});
  Config cfg;
  cfg.compressor = nullptr;
  cfg.variables = {{"x", {}}, {"d1", {}}};
  Plan p;
  p.arrays = build_arrays(ds, sel, cfg);
  ASSERT_EQ(p.arrays.size(), 2u);
  EXPECT_EQ(p.arrays[1].name, "d1");
  EXPECT_TRUE(p.arrays[1].coordinate);
  plan_jobs(p, PlanOptions{});
  EXPECT_TRUE(p.jobs.empty());
}

void plan_json_round_trips(const Case& c) {
  Plan p;
  p.arrays = build_arrays(c.ds, c.sel, c.cfg);
  p.files = c.ds.files;
  p.store = "/tmp/x.zarr";
  plan_jobs(p, c.opt);
  const auto j = plan_to_json(p);
  const Plan back = plan_from_json(j, "test");
  EXPECT_EQ(plan_to_json(back), j);
  // Plans of version 3 (a store it started, resumed by this version) load the same: manifests as
  // number columns or as an array a reference, job source chunks one number each.
  using nlohmann::json;
  for (const bool columns : {true, false}) {
    auto old = j;
    old["version"] = 3;
    for (std::size_t ai = 0; ai < p.arrays.size(); ++ai) {
      const ArrayPlan& a = p.arrays[ai];
      json& chunks = old["arrays"][ai]["source"]["chunks"];
      Region all;
      all.lo.assign(a.ndim(), 0);
      for (std::size_t d = 0; d < a.ndim(); ++d) all.hi.push_back(a.chunks_along(d));
      json index = json::array(), file = json::array(), offset = json::array(),
           length = json::array(), mask = json::array(), refs = json::array();
      bool masks = false;
      for (const int64_t i : source_chunks_of(a, all)) {
        const ChunkRef& r = a.source.chunks[static_cast<std::size_t>(i)];
        if (r.kind != ChunkRef::Kind::Range) continue;
        index.push_back(i);
        file.push_back(r.file);
        offset.push_back(r.offset);
        length.push_back(r.length);
        mask.push_back(r.filter_mask);
        masks |= r.filter_mask != 0;
        refs.push_back({i, "range", r.file, r.offset, r.length, r.filter_mask});
      }
      for (const auto& x : chunks["inline"]) refs.push_back({x[0], "inline", x[1]});
      json range = {{"index", index}, {"file", file}, {"offset", offset}, {"length", length}};
      if (masks) range["filter_mask"] = mask;
      chunks = columns ? json{{"range", range}, {"inline", chunks["inline"]}} : refs;
    }
    for (std::size_t k = 0; k < p.jobs.size(); ++k)
      old["jobs"][k]["source_chunks"] = p.jobs[k].source_chunks;
    ASSERT_NE(old, j);
    EXPECT_EQ(plan_to_json(plan_from_json(old, "test")), j);
  }
  // One edited number anywhere structural is refused, naming the field (no crash, no wrap).
  if (!p.jobs.empty()) {
    const std::vector<std::pair<json::json_pointer, json>> edits = {
        {json::json_pointer("/arrays/0/chunks/0"), 0},
        {json::json_pointer("/arrays/0/source/chunk_shape/0"), 0},
        {json::json_pointer("/arrays/0/source/edges/0/1"), -1},
        {json::json_pointer("/arrays/0/shape/0"), 1e300},
        {json::json_pointer("/arrays/0/name"), "../x"},
        {json::json_pointer("/jobs/0/id"), 7'000'000},
        {json::json_pointer("/jobs/0/region/hi/0"), int64_t{1} << 40},
        {json::json_pointer("/jobs/0/source_chunks"), json::array({json::array({0, 1ll << 31})})},
        {json::json_pointer("/threads_per_worker"), 0},
    };
    for (const auto& [where, value] : edits) {
      auto edited = j;
      edited[where] = value;
      EXPECT_THROW(plan_from_json(edited, "test"), Error) << where.to_string();
    }
  }
  // A corrupt packed manifest is refused, naming the plan.
  auto bad = j;
  for (auto& a : bad["arrays"]) {
    auto& range = a["source"]["chunks"]["range"];
    if (range["count"].get<int>() > 0) range["count"] = range["count"].get<int>() + 1;
  }
  ASSERT_NE(bad, j);
  EXPECT_THROW(plan_from_json(bad, "test"), Error);
}

TEST(Planner, PlanJsonRoundTrips) {
  std::mt19937 rng(99);
  for (int trial = 0; trial < 40; ++trial) plan_json_round_trips(random_case(rng, true));
}

// An append's plan (issue 28): the jobs cut to the chunks from the one holding the old length on
// (a partial one rewritten whole), covering each of those exactly once; it survives plan.json and a
// worker's checks; an append_from beyond the array's chunks is refused.
void append_plan_covers_the_tail(const Case& c, std::mt19937& rng) {
  Plan p;
  p.arrays = build_arrays(c.ds, c.sel, c.cfg);
  p.files = c.ds.files;
  p.store = "/tmp/x.zarr";
  plan_jobs(p, c.opt);
  if (p.jobs.empty()) return;
  const ArrayPlan& a0 = p.arrays[static_cast<std::size_t>(p.jobs[0].array)];
  const std::string dim = a0.dims[0];
  const int64_t old = std::uniform_int_distribution<int64_t>(0, a0.shape[0])(rng);
  restrict_to_tail(p, dim, {{a0.name, old}});
  int64_t covered = 0;
  for (const Job& j : p.jobs) {
    const ArrayPlan& a = p.arrays[static_cast<std::size_t>(j.array)];
    EXPECT_EQ(a.dims[0], dim);
    EXPECT_GE(j.region.lo[0], old / a.chunks[0]);
    covered += j.region.num_chunks();
  }
  const ArrayPlan& cut = p.arrays[static_cast<std::size_t>(&a0 - p.arrays.data())];
  EXPECT_EQ(covered, written_region(p, cut).num_chunks());
  EXPECT_EQ(written_region(p, cut).lo[0], old / cut.chunks[0]);
  const auto j = plan_to_json(p);
  EXPECT_EQ(plan_to_json(plan_from_json(j, "test")), j);
  auto edited = j;
  edited["arrays"][0]["append_from"] = p.arrays[0].chunks_along(0) + 1;
  EXPECT_THROW(plan_from_json(edited, "test"), Error);
}

TEST(AppendPlan, CoversOnlyTheTailAndRoundTrips) {
  std::mt19937 rng(28);
  for (int trial = 0; trial < 40; ++trial) append_plan_covers_the_tail(random_case(rng, true), rng);
}

}  // namespace
}  // namespace zp

namespace zp {
namespace {

// xarray's UnsignedIntegerCoder: the bytes read as the other signedness, the _FillValue converted
// with them, missing_value not; then masking and scaling as usual.
TEST(Decoding, UnsignedAttributeReadsTheBytesAsXarrayDoes) {
  Variable v = testing::make_variable("DQF", {"y"}, {4}, {4}, DType{'i', 1, false});
  v.attrs["_Unsigned"] = "true";
  v.fill_value = -1;
  EXPECT_EQ(unsigned_view(v), (DType{'u', 1, false}));
  EXPECT_EQ(fill_as_viewed(v, v.fill_value), nlohmann::json(255));
  Conversion c = cf_decoding(v);
  EXPECT_TRUE(c.decode);
  EXPECT_EQ(c.out, (DType{'f', 4, false}));
  const int8_t raw[4] = {0, -128, -1, 3};
  float out[4];
  convert_run(c, reinterpret_cast<const unsigned char*>(raw), 1,
              reinterpret_cast<unsigned char*>(out), 4);
  EXPECT_EQ(out[0], 0.0f);
  EXPECT_EQ(out[1], 128.0f);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_EQ(out[3], 3.0f);
  // missing_value is compared with the unsigned values as it is: -1 masks nothing.
  v.fill_value = nullptr;
  v.attrs["missing_value"] = -1;
  c = cf_decoding(v);
  convert_run(c, reinterpret_cast<const unsigned char*>(raw), 1,
              reinterpret_cast<unsigned char*>(out), 4);
  EXPECT_EQ(out[2], 255.0f);
  // Nothing to mask or scale: the same bytes, unsigned.
  v.attrs.erase("missing_value");
  c = cf_decoding(v);
  EXPECT_FALSE(c.decode);
  EXPECT_EQ(c.out, (DType{'u', 1, false}));
  // "false" on an unsigned type reads it signed; "true" there, or on floats, changes nothing.
  Variable u = testing::make_variable("counts", {"y"}, {4}, {4}, DType{'u', 8, false});
  u.attrs["_Unsigned"] = "false";
  u.fill_value = nlohmann::json(uint64_t{18446744073709551615u});
  EXPECT_EQ(unsigned_view(u), (DType{'i', 8, false}));
  EXPECT_EQ(fill_as_viewed(u, u.fill_value), nlohmann::json(-1));
  u.attrs["_Unsigned"] = "true";
  EXPECT_EQ(unsigned_view(u), (DType{'u', 8, false}));
  Variable f = testing::make_variable("t", {"y"}, {4}, {4}, DType{'f', 4, false});
  f.attrs["_Unsigned"] = "true";
  EXPECT_EQ(unsigned_view(f), (DType{'f', 4, false}));
}

}  // namespace
}  // namespace zp
