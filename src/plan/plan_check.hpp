// Checks of a plan read from a file: plan.json lives in a store folder that others may write, so
// everything a worker, `status` or a resume computes from it (shapes, chunk grids, index maps, job
// regions, source chunk numbers, keys) is checked to be consistent and in bounds before use.
// Failures are Error(Config) naming the plan file and the field; a plan in a store turns them
// into Error(Store) (load_store_plan).
#pragma once

#include <cstdint>
#include <string>

#include "plan/plan.hpp"

namespace zp {

// Largest extent, chunk count or chunk size (elements or bytes) a plan may hold: far above any
// real plan, and low enough that products of a few of them cannot overflow 64 bits unnoticed.
inline constexpr int64_t kMaxPlanExtent = int64_t{1} << 48;
inline constexpr int64_t kMaxPlanChunks = int64_t{1} << 40;
inline constexpr int64_t kMaxPlanChunkBytes = int64_t{1} << 36;

// a * b, or nullopt-like -1 when it overflows or passes `limit`.
int64_t checked_product(int64_t a, int64_t b, int64_t limit);

// A chunk grid (shape, chunk shape, edges) consistent and in bounds; its chunk count and decoded
// chunk bytes within limits. Checked before anything is sized by it.
void check_source_grid(const Variable& v, const std::string& where, const std::string& field);

// An array or store key that must be one plain name: no '/', no '.' or '..', no control
// characters, not the side folder.
void check_plain_name(const std::string& name, const std::string& where, const std::string& field);

// The whole plan: every array, chunk reference, job region and source chunk consistent.
void check_plan(const Plan& p, const std::string& where);

}  // namespace zp
