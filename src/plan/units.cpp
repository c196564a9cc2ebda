#include "plan/units.hpp"

#include <algorithm>

namespace zp {

DimUnits dim_units(const ArrayPlan& a, std::size_t d, bool per_chunk) {
  DimUnits u;
  const int64_t n = a.chunks_along(d), c = a.chunks[d];
  const DimMap& m = a.index[d];
  for (int64_t k = 0; k < n; ++k) {
    int64_t lo, hi;
    m.source_range(k * c, std::min((k + 1) * c, a.shape[d]), &lo, &hi);
    u.first_source_chunk.push_back(a.source.grid.chunk_of(d, lo));
    u.last_source_chunk.push_back(a.source.grid.chunk_of(d, hi - 1));
  }
  u.bounds.push_back(0);
  for (int64_t k = 1; k < n; ++k) {
    // Neighbouring output chunks cover adjacent source ranges; they share a source chunk when the
    // ranges meet inside one.
    const bool shares = std::max(u.first_source_chunk[k - 1], u.first_source_chunk[k]) <=
                        std::min(u.last_source_chunk[k - 1], u.last_source_chunk[k]);
    if (per_chunk || !shares) u.bounds.push_back(k);
  }
  u.bounds.push_back(n);
  return u;
}

std::vector<Region> units_in(const ArrayPlan& a, const Region& region) {
  const std::size_t nd = a.ndim();
  std::vector<std::vector<std::pair<int64_t, int64_t>>> per_dim(nd);
  for (std::size_t d = 0; d < nd; ++d) {
    const bool per_chunk = d < a.per_chunk_units.size() && a.per_chunk_units[d];
    const DimUnits u = dim_units(a, d, per_chunk);
    for (int64_t i = 0; i < u.count(); ++i) {
      const int64_t lo = std::max(u.bounds[i], region.lo[d]),
                    hi = std::min(u.bounds[i + 1], region.hi[d]);
      if (lo < hi) per_dim[d].emplace_back(lo, hi);
    }
  }
  std::vector<Region> out;
  std::vector<std::size_t> pos(nd, 0);
  for (std::size_t d = 0; d < nd; ++d)
    if (per_dim[d].empty()) return out;
  for (;;) {
    Region r;
    for (std::size_t d = 0; d < nd; ++d) {
      r.lo.push_back(per_dim[d][pos[d]].first);
      r.hi.push_back(per_dim[d][pos[d]].second);
    }
    out.push_back(std::move(r));
    std::size_t d = nd;
    while (d > 0 && ++pos[d - 1] == per_dim[d - 1].size()) pos[--d] = 0;
    if (d == 0) return out;
  }
}

void source_box(const ArrayPlan& a, const Region& region, std::vector<int64_t>& lo,
                std::vector<int64_t>& hi) {
  lo.assign(a.ndim(), 0);
  hi.assign(a.ndim(), 0);
  for (std::size_t d = 0; d < a.ndim(); ++d) {
    const int64_t c = a.chunks[d];
    int64_t s0, s1;
    a.index[d].source_range(region.lo[d] * c, std::min(region.hi[d] * c, a.shape[d]), &s0, &s1);
    lo[d] = a.source.grid.chunk_of(d, s0);
    hi[d] = a.source.grid.chunk_of(d, s1 - 1) + 1;
  }
}

std::vector<int64_t> source_chunks_of(const ArrayPlan& a, const Region& region) {
  std::vector<int64_t> lo, hi, out;
  source_box(a, region, lo, hi);
  const std::size_t nd = a.ndim();
  std::vector<int64_t> c = lo;
  for (std::size_t d = 0; d < nd; ++d)
    if (lo[d] >= hi[d]) return out;
  for (;;) {
    out.push_back(a.source.grid.linear_index(c));
    std::size_t d = nd;
    while (d > 0 && ++c[d - 1] == hi[d - 1]) {
      c[d - 1] = lo[d - 1];
      --d;
    }
    if (d == 0) break;
  }
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t stored_bytes(const Variable& v, int64_t chunk_index) {
  const ChunkRef& r = v.chunks[static_cast<std::size_t>(chunk_index)];
  switch (r.kind) {
    case ChunkRef::Kind::Missing:
      return 0;
    case ChunkRef::Kind::Range:
      return r.length;
    case ChunkRef::Kind::Inline:
      return r.data ? r.data->size() : 0;
    case ChunkRef::Kind::NetcdfSlab:
      return v.chunk_bytes();
  }
  return 0;
}

}  // namespace zp
