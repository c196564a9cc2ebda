// One output array from one source variable: its dimensions, chunks (auto, configured, sharded),
// the conversion xarray applies (encoding: decoded), fill value, attributes and codec chain.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "plan/plan.hpp"

namespace zp {

ArrayPlan make_array(const Selection& sel, const Variable& v, const Config& cfg, bool coordinate);

// A coordinate computed by the coordinator (tiled labels), written from bytes held in the plan.
ArrayPlan inline_coordinate(const std::string& name, const std::vector<std::string>& dims,
                            const std::vector<int64_t>& shape, DType dtype, Bytes data, Attrs attrs,
                            const nlohmann::json& fill, const Config& cfg);

// Drops the attributes that said how to decode `a` once it is written decoded; sets its fill.
void drop_decoded_encoding(ArrayPlan& a);

}  // namespace zp
