// HDF5's szip filter (id 4) through libaec's SZIP interface (Debian's libaec, the library HDF5
// itself reads szip with). Decode only. A chunk is HDF5's 4-byte little-endian decoded size, then
// the compressed stream; the parameters are the dataset's filter values (mask, pixels per block,
// bits per pixel, pixels per scanline).
extern "C" {  // szlib.h declares C functions without saying so
#include <szlib.h>
}

#include <cstdint>

#include "codec/codec.hpp"
#include "core/error.hpp"

namespace zp {

namespace {

int param(const nlohmann::json& config, const char* key) {
  if (!config.contains(key) || !config[key].is_number_integer())
    throw Error(ErrorKind::Source, std::string("szip: missing parameter '") + key + "'");
  return config[key].get<int>();
}

}  // namespace

Bytes szip_decode(const Bytes& in, const nlohmann::json& config, std::size_t hint) {
  if (in.size() < 4) throw Error(ErrorKind::Source, "szip chunk shorter than its 4-byte header");
  const uint32_t size = static_cast<uint32_t>(in[0]) | static_cast<uint32_t>(in[1]) << 8 |
                        static_cast<uint32_t>(in[2]) << 16 | static_cast<uint32_t>(in[3]) << 24;
  // The header is untrusted: it must say the size the chunk decodes to (when known).
  if (hint && size != hint)
    throw Error(ErrorKind::Source, "szip chunk says it holds " + std::to_string(size) +
                                       " bytes, not the chunk's " + std::to_string(hint));
  if (!hint && size > in.size() * 64 + 1024)
    throw Error(ErrorKind::Source, "szip chunk claims an implausible decoded size");
  SZ_com_t p{};
  p.options_mask = param(config, "mask");
  p.pixels_per_block = param(config, "pixels_per_block");
  p.bits_per_pixel = param(config, "bits_per_pixel");
  p.pixels_per_scanline = param(config, "pixels_per_scanline");
  Bytes out(size);
  size_t n = out.size();
  const int rc = SZ_BufftoBuffDecompress(out.data(), &n, in.data() + 4, in.size() - 4, &p);
  if (rc != SZ_OK || n != size)
    throw Error(ErrorKind::Source, "szip stream is corrupt (libaec: " + std::to_string(rc) + ")");
  return out;
}

}  // namespace zp
