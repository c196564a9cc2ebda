#include "plan/units.hpp"

#include <algorithm>

namespace zp {

namespace {

// Distinct source chunks (ascending) that output indices [a, b) along `d` read.
std::vector<int64_t> chunks_read(const ArrayPlan& a, std::size_t d, int64_t o0, int64_t o1) {
  std::vector<int64_t> out;
  for (const Segment& p : a.index[d].pieces(o0, o1)) {
    const int64_t c0 = a.source.grid.chunk_of(d, p.src_lo());
    const int64_t c1 = a.source.grid.chunk_of(d, p.src_hi() - 1);
    for (int64_t c = c0; c <= c1; ++c) out.push_back(c);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool intersect(const std::vector<int64_t>& x, const std::vector<int64_t>& y) {
  auto i = x.begin();
  auto j = y.begin();
  while (i != x.end() && j != y.end()) {
    if (*i == *j) return true;
    *i < *j ? ++i : ++j;
  }
  return false;
}

}  // namespace

DimUnits dim_units(const ArrayPlan& a, std::size_t d, bool per_chunk) {
  DimUnits u;
  const int64_t n = a.chunks_along(d), c = a.chunks[d];
  for (int64_t k = 0; k < n; ++k)
    u.source_chunks.push_back(chunks_read(a, d, k * c, std::min((k + 1) * c, a.shape[d])));
  u.bounds.push_back(0);
  for (int64_t k = 1; k < n; ++k) {
    // Neighbouring output chunks that read a common source chunk share a unit.
    const bool shares = intersect(u.source_chunks[static_cast<std::size_t>(k - 1)],
                                  u.source_chunks[static_cast<std::size_t>(k)]);
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

std::vector<std::vector<int64_t>> source_sets(const ArrayPlan& a, const Region& region) {
  std::vector<std::vector<int64_t>> out(a.ndim());
  for (std::size_t d = 0; d < a.ndim(); ++d) {
    const int64_t c = a.chunks[d];
    out[d] = chunks_read(a, d, region.lo[d] * c, std::min(region.hi[d] * c, a.shape[d]));
  }
  return out;
}

std::vector<int64_t> source_chunks_of(const ArrayPlan& a, const Region& region) {
  const auto sets = source_sets(a, region);
  std::vector<int64_t> out;
  const std::size_t nd = a.ndim();
  for (std::size_t d = 0; d < nd; ++d)
    if (sets[d].empty()) return out;
  std::vector<std::size_t> pos(nd, 0);
  std::vector<int64_t> c(nd);
  for (;;) {
    for (std::size_t d = 0; d < nd; ++d) c[d] = sets[d][pos[d]];
    out.push_back(a.source.grid.linear_index(c));
    std::size_t d = nd;
    while (d > 0 && ++pos[d - 1] == sets[d - 1].size()) pos[--d] = 0;
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
  }
  return 0;
}

}  // namespace zp
