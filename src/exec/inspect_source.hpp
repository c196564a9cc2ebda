// inspect: what a source is — dimensions with coordinate ranges, variables with dtypes, CF
// encoding, codecs and chunk grid — as JSON, for the CLI and the Python module.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "store/storage_options.hpp"

namespace zp {

// `filter_by_keys`: the grib engine's (cfgrib's backend_kwargs); null: none.
nlohmann::ordered_json inspect_source(const std::string& source, const std::string& engine,
                                      const std::string& concat_dim, const std::string& group = "",
                                      const AccessOptions& access = {},
                                      const nlohmann::json& filter_by_keys = nullptr);

}  // namespace zp
