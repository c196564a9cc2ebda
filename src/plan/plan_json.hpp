// Plan <-> JSON. The JSON is what `plan --json` prints and the file `worker` runs: it holds the
// manifest entries of every source chunk the jobs read, so workers never open the source's
// metadata. A plan file is untrusted input (a store folder may be written by others): parsing
// checks it whole (plan_check.hpp); errors are Error(Config) naming the plan file and the field,
// Error(Store) for a plan in a store, and a plan in a store must match the SHA-256 its store
// recorded when it was started.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "plan/plan.hpp"

namespace zp {

// 4: manifests packed (source/dataset_json.cpp), job source chunks as [start, count] runs.
inline constexpr int kPlanVersion = 4;

nlohmann::json plan_to_json(const Plan& plan, bool include_manifest = true);
Plan plan_from_json(const nlohmann::json& j, const std::string& where);
// The text of a plan file (JSON, bare NaN allowed) parsed and checked.
Plan plan_from_text(const std::string& text, const std::string& where);
// A plan saved in a store (STORE/.zarr-parallel/plan.json) gets `store` = that STORE, wherever
// the store has been moved since: workers write where their plan file is, never to a path frozen
// in it.
// `expected_sha256` (what the coordinator that started this worker read, "" none): a plan file
// edited since is refused, whatever the store's own records say (whoever can write the store can
// rewrite those too).
// `text_sha256` (when given) receives the SHA-256 of the text parsed: what a coordinator hands
// the workers it starts, never the file hashed again later (others may rewrite it meanwhile).
Plan load_plan(const std::string& path, const std::string& expected_sha256 = "",
               std::string* text_sha256 = nullptr);
// The same for the plan a store saved: a damaged one is the store's fault (Error(Store), exit 5),
// not the config's.
Plan load_store_plan(const std::string& path, const std::string& expected_sha256 = "",
                     std::string* text_sha256 = nullptr);

// The store folder a plan file belongs to, or "" when the file is not in a store's side folder.
std::string store_root_of_plan(const std::string& plan_path);

}  // namespace zp
