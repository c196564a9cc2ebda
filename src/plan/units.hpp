// Work units: the grid arithmetic shared by the planner and the worker. Along one output dimension,
// consecutive output chunks that share a source chunk are merged into one unit, so the product of
// per-dimension units is a box that reads source chunks no other box reads. A worker streams a
// job unit by unit: its memory holds one unit's output chunks, not the whole job. Pure functions.
#pragma once

#include <cstdint>
#include <vector>

#include "plan/plan.hpp"

namespace zp {

struct DimUnits {
  // Per output chunk along this dimension: the source chunks it reads (ascending; two runs at a
  // roll's seam, none inside padding).
  std::vector<std::vector<int64_t>> source_chunks;
  std::vector<int64_t> bounds;  // output chunk index where each unit starts, then n
  int64_t count() const { return static_cast<int64_t>(bounds.size()) - 1; }
};

DimUnits dim_units(const ArrayPlan& a, std::size_t d, bool per_chunk);

// Units of `a` inside `region` (in C order), using a.per_chunk_units.
std::vector<Region> units_in(const ArrayPlan& a, const Region& region);

// Per dimension, the source chunks (ascending) that `region` needs.
std::vector<std::vector<int64_t>> source_sets(const ArrayPlan& a, const Region& region);

// Distinct source chunks (linear indices, ascending) that `region` needs.
std::vector<int64_t> source_chunks_of(const ArrayPlan& a, const Region& region);

// Stored bytes of a source chunk (compressed length; decoded size for netCDF-3 slabs).
uint64_t stored_bytes(const Variable& v, int64_t chunk_index);

}  // namespace zp
