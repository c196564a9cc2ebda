#include "plan/plan_check.hpp"

#include <fmt/format.h>

#include <set>

#include "core/error.hpp"
#include "core/plural.hpp"
#include "plan/append_plan.hpp"

namespace zp {

namespace {

Error bad(const std::string& where, const std::string& field, const std::string& what) {
  return Error::config(where, field + ": " + what);
}

// Whole extents of `v` within limits, one per dimension of `dims`.
void check_extents(const std::vector<int64_t>& v, std::size_t ndim, int64_t lo,
                   const std::string& where, const std::string& field) {
  if (v.size() != ndim)
    throw bad(where, field,
              fmt::format("{} for {}", counted(static_cast<int64_t>(v.size()), "value"),
                          counted(static_cast<int64_t>(ndim), "dimension")));
  for (int64_t x : v)
    if (x < lo || x > kMaxPlanExtent) throw bad(where, field, fmt::format("{} out of range", x));
}

// Edges of one dimension: 0 = e0 < e1 < ... < en = size, no cell longer than a chunk.
void check_edges(const std::vector<int64_t>& e, int64_t size, int64_t chunk,
                 const std::string& where, const std::string& field) {
  if (e.empty() || e.front() != 0 || e.back() != size)
    throw bad(where, field, "does not run from 0 to the dimension's size");
  for (std::size_t i = 1; i < e.size(); ++i)
    if (e[i] <= e[i - 1] || e[i] - e[i - 1] > chunk)
      throw bad(where, field, fmt::format("cell {} is empty or longer than a chunk", i - 1));
}

void check_array_shape(const ArrayPlan& a, const std::string& where, const std::string& f) {
  const std::size_t n = a.dims.size();
  check_extents(a.shape, n, 0, where, f + ".shape");
  check_extents(a.chunks, n, 1, where, f + ".chunks");
  if (!a.per_chunk_units.empty() && a.per_chunk_units.size() != n)
    throw bad(where, f + ".per_chunk_units", "does not match the dimensions");
  if (a.source.ndim() != n || a.index.size() != n)
    throw bad(where, f + ".source", "does not match the array's dimensions");
  int64_t chunks = 1, bytes = std::max<int64_t>(1, a.conversion.out.size);
  for (std::size_t d = 0; d < n; ++d) {
    chunks = checked_product(chunks, a.chunks_along(d), kMaxPlanChunks);
    bytes = checked_product(bytes, a.chunks[d], kMaxPlanChunkBytes);
    if (chunks < 0 || bytes < 0)
      throw bad(where, f + ".chunks", "too many chunks, or chunks too large");
  }
  for (std::size_t d = 0; d < a.inner_chunks.size(); ++d)
    if (a.inner_chunks[d] > a.chunks[d]) throw bad(where, f + ".inner_chunks", "out of range");
}

void check_stored(const StoredLayout& st, const std::string& where, const std::string& f) {
  check_extents(st.shape, st.dims.size(), 0, where, f + ".stored.shape");
  check_extents(st.chunks, st.dims.size(), 1, where, f + ".stored.chunks");
  int64_t batches = 1;
  for (int64_t c : st.coarse)
    if ((batches = checked_product(batches, c, kMaxPlanChunks)) < 0)
      throw bad(where, f + ".stored.coarse", "too many tiles");
  for (const auto& d : st.dims) check_plain_name(d, where, f + ".stored.dims");
}

void check_refs(const Variable& v, std::size_t files, const std::string& where,
                const std::string& f) {
  for (std::size_t i = 0; i < v.chunks.size(); ++i) {
    const ChunkRef& r = v.chunks[i];
    if (r.kind != ChunkRef::Kind::Range) continue;
    if (r.file >= files || r.offset > UINT64_MAX - r.length)
      throw bad(where, fmt::format("{}.source.chunks[{}]", f, i),
                "names no file of the plan, or a range past 2^64");
  }
}

// A written array's chunks fit the memory it was planned for (the planner refuses a plan whose
// predicted peak does not): a chunk shape edited upwards is refused here, not by bad_alloc.
void check_fits_memory(const Plan& p, const ArrayPlan& a, const std::string& where,
                       const std::string& f) {
  if (a.coordinate || p.memory_limit <= 0 || a.num_chunks() == 0) return;
  const uint64_t need = a.chunk_bytes() + a.source.chunk_bytes();  // each below 2^36: no overflow
  if (need > static_cast<uint64_t>(p.memory_limit))
    throw bad(where, f + ".chunks",
              fmt::format("a chunk and a source chunk need {} bytes, more than the plan's "
                          "memory_limit {}",
                          need, p.memory_limit));
}

void check_array(const Plan& p, const ArrayPlan& a, const std::string& where,
                 const std::string& f) {
  check_plain_name(a.name, where, f + ".name");
  check_array_shape(a, where, f);
  check_fits_memory(p, a, where, f);
  if (a.stored) check_stored(*a.stored, where, f);
  check_refs(a.source, p.files.size(), where, f);
  uint32_t last = 0;
  for (const auto& fc : a.file_conversions) {
    if (fc.first_file >= p.files.size() || fc.first_file < last)
      throw bad(where, f + ".file_conversions", "names no file of the plan, or is out of order");
    last = fc.first_file;
  }
}

// One job: its array, a region of whole chunks inside it, source chunks inside the source grid.
void check_job(const Plan& p, const Job& job, std::size_t i, const std::string& where) {
  const std::string f = fmt::format("jobs[{}]", i);
  if (job.id != static_cast<int64_t>(i))
    throw bad(where, f + ".id", "jobs are not numbered 0..n-1");
  if (job.array < 0 || static_cast<std::size_t>(job.array) >= p.arrays.size())
    throw bad(where, f + ".array", "names no array");
  const ArrayPlan& a = p.arrays[static_cast<std::size_t>(job.array)];
  if (a.coordinate) throw bad(where, f + ".array", "is a coordinate, which no job writes");
  const Region& r = job.region;
  if (r.lo.size() != a.ndim() || r.hi.size() != a.ndim())
    throw bad(where, f + ".region", "does not match the array's dimensions");
  const Region written = written_region(p, a);  // an append keeps the chunks before it
  for (std::size_t d = 0; d < a.ndim(); ++d)
    if (r.lo[d] < written.lo[d] || r.lo[d] >= r.hi[d] || r.hi[d] > a.chunks_along(d))
      throw bad(where, f + ".region", "is empty or outside the array's chunks");
  const int64_t sources = a.source.grid.num_chunks();
  for (int64_t c : job.source_chunks)
    if (c < 0 || c >= sources) throw bad(where, f + ".source_chunks", "outside the source grid");
}

// Marks each chunk of `r` in `seen` (C order over `a`'s chunk grid); false when one was already.
bool mark_region(const ArrayPlan& a, const Region& r, std::vector<bool>& seen) {
  std::vector<int64_t> at = r.lo;
  for (;;) {
    int64_t linear = 0;
    for (std::size_t d = 0; d < a.ndim(); ++d) linear = linear * a.chunks_along(d) + at[d];
    if (seen[static_cast<std::size_t>(linear)]) return false;
    seen[static_cast<std::size_t>(linear)] = true;
    std::size_t d = a.ndim();
    while (d > 0 && ++at[d - 1] == r.hi[d - 1]) at[d - 1] = r.lo[d - 1], --d;
    if (d == 0) return true;
  }
}

// The jobs of each written array cover its chunks exactly once: a chunk no job writes would be
// left as fill in a store marked complete. Counted always; overlaps looked for up to 2^26 chunks.
void check_coverage(const Plan& p, const std::string& where) {
  std::vector<int64_t> covered(p.arrays.size(), 0);
  for (const auto& job : p.jobs)
    covered[static_cast<std::size_t>(job.array)] += job.region.num_chunks();
  std::vector<std::vector<bool>> seen(p.arrays.size());
  for (std::size_t i = 0; i < p.arrays.size(); ++i) {
    const ArrayPlan& a = p.arrays[i];
    const int64_t written = kept_whole(p, a) ? 0 : written_region(p, a).num_chunks();
    if (!a.coordinate && covered[i] != written)
      throw bad(where, fmt::format("arrays[{}]", i),
                fmt::format("its jobs cover {} of the {} {} it writes", covered[i], written,
                            noun(written, "chunk")));
    if (!a.coordinate && a.num_chunks() <= (int64_t{1} << 26))
      seen[i].assign(static_cast<std::size_t>(a.num_chunks()), false);
  }
  for (std::size_t k = 0; k < p.jobs.size(); ++k) {
    const Job& job = p.jobs[k];
    auto& marks = seen[static_cast<std::size_t>(job.array)];
    if (!marks.empty() &&
        !mark_region(p.arrays[static_cast<std::size_t>(job.array)], job.region, marks))
      throw bad(where, fmt::format("jobs[{}].region", k), "overlaps another job's region");
  }
}

void check_settings(const Plan& p, const std::string& where) {
  if (p.zarr_format != 2 && p.zarr_format != 3) throw bad(where, "zarr_format", "not 2 or 3");
  if (p.workers < 1 || p.workers > 1'000'000) throw bad(where, "workers", "out of range");
  if (p.threads_per_worker < 1 || p.threads_per_worker > 4096)
    throw bad(where, "threads_per_worker", "out of range");
  if (p.memory_limit < 0) throw bad(where, "memory_limit", "negative");
  if (p.worker_timeout < 0) throw bad(where, "worker_timeout", "negative");
}

}  // namespace

int64_t checked_product(int64_t a, int64_t b, int64_t limit) {
  int64_t out = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &out) || out > limit) return -1;
  return out;
}

void check_source_grid(const Variable& v, const std::string& where, const std::string& field) {
  const std::size_t n = v.dims.size();
  check_extents(v.shape, n, 0, where, field + ".shape");
  check_extents(v.grid.chunk_shape, n, 1, where, field + ".chunk_shape");
  if (v.grid.edges.size() != n) throw bad(where, field + ".edges", "does not match the dimensions");
  int64_t chunks = 1, bytes = std::max<int64_t>(1, v.dtype.size);
  for (std::size_t d = 0; d < n; ++d) {
    check_edges(v.grid.edges[d], v.shape[d], v.grid.chunk_shape[d], where,
                fmt::format("{}.edges[{}]", field, d));
    chunks = checked_product(chunks, v.grid.chunks_along(d), kMaxPlanChunks);
    bytes = checked_product(bytes, v.grid.chunk_shape[d], kMaxPlanChunkBytes);
    if (chunks < 0 || bytes < 0)
      throw bad(where, field + ".chunk_shape", "too many chunks, or chunks too large");
  }
}

void check_plain_name(const std::string& name, const std::string& where, const std::string& field) {
  bool ok = !name.empty() && name.size() <= 255 && name != "." && name != ".." &&
            name != ".zarr-parallel" && name.find('/') == std::string::npos &&
            name.find('\\') == std::string::npos;
  for (unsigned char c : name) ok = ok && c >= 0x20 && c != 0x7f;
  if (!ok) throw bad(where, field, "'" + name + "' is not a plain name");
}

void check_plan(const Plan& p, const std::string& where) {
  check_settings(p, where);
  std::set<std::string> names;
  for (std::size_t i = 0; i < p.arrays.size(); ++i) {
    check_array(p, p.arrays[i], where, fmt::format("arrays[{}]", i));
    if (!names.insert(p.arrays[i].name).second)
      throw bad(where, fmt::format("arrays[{}].name", i), "names another array too");
  }
  if (const std::string why = append_fields_problem(p); !why.empty())
    throw bad(where, "append_dim", why);
  for (std::size_t i = 0; i < p.jobs.size(); ++i) check_job(p, p.jobs[i], i, where);
  check_coverage(p, where);
}

}  // namespace zp
