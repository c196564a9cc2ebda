// Planner stage 1: which output arrays the store holds. The variables asked for (or every data
// variable) with what each needs to read as it does in the source, their dimension coordinates,
// tiled when the selection tiles; refuses names and chunk/shard keys that fit no output array.
#pragma once

#include <vector>

#include "config/config.hpp"
#include "plan/plan.hpp"

namespace zp {

// Output arrays of the selected variables and their dimension coordinates.
std::vector<ArrayPlan> build_arrays(const Dataset& ds, const Selection& sel, const Config& cfg);

}  // namespace zp
