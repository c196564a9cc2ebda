// The small template language of kerchunk reference sets: "{{name}}" in URLs (from "templates")
// and "{{i * 1000 + 24}}" in "gen" entries (integer arithmetic on the generator's dimensions:
// + - * / // % and parentheses, with Python's floor semantics; a result beyond 64 bits or nesting
// deeper than 64 is an error). Pure functions; errors are Error(Source) naming `where`.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/text_codec.hpp"

namespace zp {

std::string render_template(const std::string& text,
                            const std::map<std::string, std::string>& strings,
                            const std::map<std::string, int64_t>& numbers,
                            const std::string& where);

}  // namespace zp
