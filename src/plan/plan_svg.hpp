// A picture of a plan (SVG): for each data array, its two largest output dimensions (or the ones
// named in `dims`, those the array has) drawn as a
// grid of output chunks coloured by the job that writes them, the source chunk edges seen through
// the index map, output chunks whose job re-reads a source chunk outlined in red, selection edges
// that cut a source chunk dashed in red, and a legend with read amplification and memory. Pure.
#pragma once

#include <string>
#include <vector>

#include "plan/plan.hpp"

namespace zp {

// Every picture starts with this line, so a later `plan --svg` knows the file is one of ours.
constexpr const char* kPlanSvgMarker = "<!-- zarr-parallel plan picture -->\n";

std::string plan_svg(const Plan& plan, const std::vector<std::string>& dims = {});

}  // namespace zp
