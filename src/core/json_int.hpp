// Integers read from untrusted JSON (reference sets, .zarray, codec settings, configs): only JSON
// integers within range are accepted, so a float such as 1e300 is an error, not a conversion with
// undefined behaviour.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace zp {

// Throws Error(kind) naming `what` when `j` is not an integer in [lo, hi].
int64_t json_int(const nlohmann::json& j, const std::string& what, int64_t lo = INT64_MIN,
                 int64_t hi = INT64_MAX);
// j[key] when present, else `fallback`.
int64_t json_int_or(const nlohmann::json& j, const char* key, int64_t fallback,
                    const std::string& what, int64_t lo = INT64_MIN, int64_t hi = INT64_MAX);
std::vector<int64_t> json_int_list(const nlohmann::json& j, const std::string& what,
                                   int64_t lo = INT64_MIN);

}  // namespace zp
