// Plan <-> JSON. The JSON is what `plan --json` prints and the file `worker` runs: it holds the
// manifest entries of every source chunk the jobs read, so workers never open the source's
// metadata. Parsing errors are Error(Config) naming the plan file.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "plan/plan.hpp"

namespace zp {

nlohmann::json plan_to_json(const Plan& plan, bool include_manifest = true);
Plan plan_from_json(const nlohmann::json& j, const std::string& where);
Plan load_plan(const std::string& path);

}  // namespace zp
