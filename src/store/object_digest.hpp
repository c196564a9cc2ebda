// Digests an object store checks a write against: Content-MD5 (base64 of the MD5, which S3 and
// s3rver verify before storing, answering 400 BadDigest on a mismatch) and the hex SHA-256 that
// SigV4 signs as x-amz-content-sha256 (which AWS verifies too). By OpenSSL's libcrypto.
#pragma once

#include <string>

#include "codec/codec.hpp"

namespace zp {

std::string md5_base64(const Bytes& data);
std::string md5_hex(const Bytes& data);
// The hex form of a Content-MD5 value (base64 of 16 bytes); "" when it is not one.
std::string md5_hex_from_base64(const std::string& base64);
std::string sha256_hex_of(const Bytes& data);

}  // namespace zp
