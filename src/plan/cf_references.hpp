// CF attributes that name other variables (coordinates, grid_mapping, bounds...): which variables
// come along with a subset, and the attributes kept true after renames and subsets.
#pragma once

#include <string>
#include <vector>

#include "plan/plan.hpp"

namespace zp {

// A renamed variable is renamed where other variables name it too.
void rename_references(Attrs& attrs, const Selection& sel);

// The auxiliary coordinates and grid mappings `ds[[v]]` keeps beside v.
std::vector<std::string> companions_of(const Dataset& ds, const Variable& v);

// `coordinates` attributes name only what the store holds, and the coordinates it borrowed.
void keep_coordinates_the_store_holds(std::vector<ArrayPlan>& arrays, const Dataset& ds,
                                      const Selection& sel);

}  // namespace zp
