// crc32c (Castagnoli), as Zarr v3 appends it to a chunk or a shard index: 4 bytes, little-endian.
// The CRC comes from ISA-L (crc32_iscsi); zlib's crc32 is another polynomial.
#include <isa-l/crc.h>

#include <algorithm>

#include "codec/codec.hpp"
#include "core/error.hpp"

namespace zp {

uint32_t crc32c(const unsigned char* data, std::size_t n) {
  uint32_t crc = 0xFFFFFFFFu;
  // crc32_iscsi takes an int length: feed it in pieces below 2 GiB.
  constexpr std::size_t kPiece = 1u << 30;
  for (std::size_t at = 0; at < n; at += kPiece) {
    const std::size_t len = std::min(kPiece, n - at);
    crc = crc32_iscsi(const_cast<unsigned char*>(data + at), static_cast<int>(len), crc);
  }
  return crc ^ 0xFFFFFFFFu;
}

Bytes crc32c_decode(const Bytes& in, const nlohmann::json&, std::size_t) {
  if (in.size() < 4) throw Error(ErrorKind::Source, "crc32c: fewer than 4 bytes");
  const std::size_t n = in.size() - 4;
  const uint32_t stored = static_cast<uint32_t>(in[n]) | static_cast<uint32_t>(in[n + 1]) << 8 |
                          static_cast<uint32_t>(in[n + 2]) << 16 |
                          static_cast<uint32_t>(in[n + 3]) << 24;
  if (crc32c(in.data(), n) != stored) throw Error(ErrorKind::Source, "crc32c checksum mismatch");
  return Bytes(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
}

Bytes crc32c_encode(const Bytes& in, const nlohmann::json&, int) {
  Bytes out = in;
  const uint32_t c = crc32c(in.data(), in.size());
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<unsigned char>(c >> (8 * i)));
  return out;
}

// The v3 "bytes" codec: our buffers already hold elements in the stored byte order.
Bytes identity_decode(const Bytes& in, const nlohmann::json&, std::size_t) { return in; }
Bytes identity_encode(const Bytes& in, const nlohmann::json&, int) { return in; }

}  // namespace zp
