// JSON read from a source (a reference set, Zarr metadata) is untrusted: parsed within the depth
// limit, and any shape or number the code did not expect becomes a source error naming where.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "core/error.hpp"

namespace zp {

// `text` as JSON; Error(Source) naming `where` when it is nested too deep or invalid.
nlohmann::json parse_json(const std::string& text, const std::string& where);

// f(), with JSON and logic errors (a wrong type, a number out of range) as Error(Source).
template <typename F>
auto as_source_error(const std::string& where, F&& f) {
  try {
    return f();
  } catch (const nlohmann::json::exception& e) {
    throw Error::source(where, std::string("malformed reference set: ") + e.what());
  } catch (const std::logic_error& e) {
    throw Error::source(where, std::string("malformed reference set: ") + e.what());
  }
}

}  // namespace zp
