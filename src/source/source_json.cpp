#include "source/source_json.hpp"

#include "core/error.hpp"
#include "core/json_limits.hpp"

namespace zp {

nlohmann::json parse_json(const std::string& text, const std::string& where) {
  if (json_too_deep(text))
    throw Error::source(where, "JSON nested more than " + std::to_string(kMaxJsonDepth) +
                                   " levels deep; refusing to read it");
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error::source(where, std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace zp
