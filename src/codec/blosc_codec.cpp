// Blosc through c-blosc's context API, single-threaded: our pool owns the parallelism.
#include <blosc.h>

#include "codec/codec.hpp"
#include "core/error.hpp"

namespace zp {

Bytes blosc_decode(const Bytes& in, const nlohmann::json&, std::size_t size_hint) {
  std::size_t nbytes = 0, cbytes = 0, blocksize = 0;
  if (in.size() < BLOSC_MIN_HEADER_LENGTH) throw Error(ErrorKind::Source, "blosc buffer too short");
  blosc_cbuffer_sizes(in.data(), &nbytes, &cbytes, &blocksize);
  if (cbytes != in.size())
    throw Error(ErrorKind::Source, "blosc header does not match buffer size");
  if (size_hint && nbytes > size_hint + 1024)
    throw Error(ErrorKind::Source, "blosc header claims too many bytes");
  Bytes out(nbytes);
  if (nbytes == 0) return out;
  const int n = blosc_decompress_ctx(in.data(), out.data(), out.size(), 1);
  if (n < 0 || static_cast<std::size_t>(n) != nbytes)
    throw Error(ErrorKind::Source, "blosc stream is corrupt");
  return out;
}

Bytes blosc_encode(const Bytes& in, const nlohmann::json& config, int itemsize) {
  const std::string cname = config.value("cname", "lz4");
  const int clevel = config.value("clevel", 5);
  int shuffle = config.value("shuffle", 1);
  // numcodecs AUTOSHUFFLE (-1): bit shuffle for 1-byte items, byte shuffle otherwise.
  if (shuffle == -1) shuffle = itemsize == 1 ? BLOSC_BITSHUFFLE : BLOSC_SHUFFLE;
  const std::size_t blocksize = config.value("blocksize", 0);
  Bytes out(in.size() + BLOSC_MAX_OVERHEAD);
  const int n = blosc_compress_ctx(clevel, shuffle, static_cast<std::size_t>(itemsize), in.size(),
                                   in.data(), out.data(), out.size(), cname.c_str(), blocksize, 1);
  if (n <= 0) throw Error::internal("blosc compression failed (cname '" + cname + "')");
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace zp
