// Recommendations: where a selection edge or an output chunk size cuts through source chunks, say
// which values would align and what each would save, by planning the alternative (the planner is
// pure and cheap) and comparing bytes read, read amplification and peak memory. Also says when
// the memory limit forces re-reads. Pure.
#pragma once

#include <vector>

#include "config/config.hpp"
#include "plan/planner.hpp"

namespace zp {

std::vector<Recommendation> recommend(const Dataset& ds, const Coordinates& coords,
                                      const Selection& sel, const Config& cfg,
                                      const PlanOptions& opt, const Plan& plan);

}  // namespace zp
