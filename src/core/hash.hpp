// SHA-256 of a byte string, as lowercase hex. Used for the config hash recorded in the store.
// HMAC-SHA256: what signs the manifest cache's entries with the user's own key.
#pragma once

#include <string>

namespace zp {
std::string sha256_hex(const std::string& data);
std::string hmac_sha256_hex(const std::string& key, const std::string& data);
}  // namespace zp
