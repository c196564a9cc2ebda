// Zstandard frames, as numcodecs' Zstd and HDF5 filter 32015 store them.
#include <zstd.h>

#include "codec/codec.hpp"
#include "core/error.hpp"
#include "core/json_int.hpp"

namespace zp {

Bytes zstd_decode(const Bytes& in, const nlohmann::json&, std::size_t hint) {
  unsigned long long size = ZSTD_getFrameContentSize(in.data(), in.size());
  if (size == ZSTD_CONTENTSIZE_ERROR) throw Error(ErrorKind::Source, "zstd frame is corrupt");
  if (size == ZSTD_CONTENTSIZE_UNKNOWN) size = hint;
  if (hint && size > hint + 1024)
    throw Error(ErrorKind::Source, "zstd frame claims too many bytes");
  Bytes out(size);
  const std::size_t n = ZSTD_decompress(out.data(), out.size(), in.data(), in.size());
  if (ZSTD_isError(n)) throw Error(ErrorKind::Source, std::string("zstd: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

Bytes zstd_encode(const Bytes& in, const nlohmann::json& config, int) {
  Bytes out(ZSTD_compressBound(in.size()));
  const std::size_t n =
      ZSTD_compress(out.data(), out.size(), in.data(), in.size(),
                    static_cast<int>(json_int_or(config, "level", 1, "zstd level", -131072, 22)));
  if (ZSTD_isError(n)) throw Error::internal(std::string("zstd: ") + ZSTD_getErrorName(n));
  out.resize(n);
  return out;
}

}  // namespace zp
