// Files that pack a variable differently: one conversion per run of files, as xarray decodes each
// file before joining them.
#pragma once

#include <string>
#include <vector>

#include "plan/plan.hpp"

namespace zp {

// Throws Error(Config) when the runs cannot be joined (encoding: source, a coordinate, or runs
// that decode to different types).
void apply_encoding_runs(ArrayPlan& a, const std::vector<std::string>& files, bool decoded);

}  // namespace zp
