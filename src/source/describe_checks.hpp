// Checks on what a source's metadata says, made when the source is described (inspect, plan),
// so bad metadata is exit 4 naming the source before anything is planned or written.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "core/dtype.hpp"

namespace zp {

// Error(Source) naming `where` unless `value` (null: none) is one element of dtype `t`; `what`
// names the field ("fill_value", "_FillValue").
void check_fill_fits(const nlohmann::json& value, DType t, const std::string& where,
                     const std::string& what);

// Error(Source) naming `uri` when an array name has a control character (it would reach keys,
// paths and terminals).
void check_array_name(const std::string& name, const std::string& uri);

}  // namespace zp
