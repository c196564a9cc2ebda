// Text encodings met in array data and metadata: base64 (kerchunk inline data, Zarr v2 fill values
// of bytes arrays) and UCS-4 (numpy's fixed-width '<U'/'>U' text). Pure functions.
#pragma once

#include <string>

#include "core/bytes.hpp"

namespace zp {

// Strict base64 (RFC 4648, padding optional; URL-safe letters too); throws Error(Source) naming
// `where`.
Bytes decode_base64(const std::string& text, const std::string& where);
std::string encode_base64(const Bytes& data);

// UTF-8 text as UCS-4 code units (4 bytes each); invalid UTF-8 throws Error(Source) naming `where`.
Bytes ucs4_from_utf8(const std::string& text, bool big_endian,
                                          const std::string& where);
// UCS-4 code units as UTF-8, stopping at the first zero unit (numpy's padding).
std::string utf8_from_ucs4(const unsigned char* data, std::size_t units, bool big_endian);

}  // namespace zp
