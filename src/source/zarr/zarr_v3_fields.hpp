// The Zarr v3 rule for fields a reader does not know: an array or group whose metadata has a
// storage transformer, or a top-level field not in the core spec whose value is not an object with
// "must_understand": false, must not be read (its bytes may mean something else).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace zp {

// Error(Source) naming `where` and the field when `meta` (an array's zarr.json) has one.
void refuse_v3_fields_not_understood(const nlohmann::json& meta, const std::string& where);
// The same rule for a group's zarr.json: its core fields, and zarr-python's
// `consolidated_metadata` (an object, or null when not consolidated), which is read.
void refuse_v3_group_fields_not_understood(const nlohmann::json& meta, const std::string& where);

}  // namespace zp
