// SHA-256 of a byte string, as lowercase hex. Used for the config hash recorded in the store.
#pragma once

#include <string>

namespace zp {
std::string sha256_hex(const std::string& data);
}
