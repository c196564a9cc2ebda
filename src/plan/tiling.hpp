// tiled: data arrays get a stored layout (batch_dim first, tiles a chunk); the 1-D coordinates of
// tiled dimensions become D_coarse(batch_dim) and D(batch_dim, D_fine).
#pragma once

#include <vector>

#include "config/config.hpp"
#include "plan/plan.hpp"

namespace zp {

void apply_tiling(std::vector<ArrayPlan>& arrays, const Dataset& ds, const Selection& sel,
                  const Config& cfg);

}  // namespace zp
