// A variable's transforms under `variables:` (rename, attrs, astype, scale) applied to its output
// array: astype and scale become value steps on the decoded values.
#pragma once

#include "config/config.hpp"
#include "plan/plan.hpp"

namespace zp {

// Throws Error(Config) naming the transform's key when a transform does not apply.
void apply_variable_transforms(ArrayPlan& a, const VariableSpec& spec);

}  // namespace zp
