// UTF-8 checks for text that arrives from files and ends up in JSON (which must be UTF-8).
#pragma once

#include <string>

namespace zp {

bool valid_utf8(const std::string& s);
// `s` unchanged when it is valid UTF-8; otherwise every byte read as Latin-1 (what old NetCDF
// files with a degree sign mean), so the text stays readable and the JSON stays valid.
std::string to_valid_utf8(const std::string& s);

}  // namespace zp
