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

// The file's filter values are untrusted: each within what szip defines (masks of 8 bits, up to
// 32 pixels a block and 32 bits a pixel; scanlines are bounded by the budget below), else refused.
int param(const nlohmann::json& config, const char* key, int64_t lo, int64_t hi) {
  if (!config.contains(key) || !config[key].is_number_integer())
    throw Error(ErrorKind::Source, std::string("szip: missing parameter '") + key + "'");
  const auto v = config[key].get<int64_t>();
  if (v < lo || v > hi)
    throw Error(ErrorKind::Source, std::string("szip: parameter '") + key + "' is " +
                                       std::to_string(v) + ", outside " + std::to_string(lo) +
                                       ".." + std::to_string(hi));
  return static_cast<int>(v);
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
  p.options_mask = param(config, "mask", 0, 255);
  p.pixels_per_block = param(config, "pixels_per_block", 2, 32);
  p.bits_per_pixel = param(config, "bits_per_pixel", 1, 64);
  p.pixels_per_scanline = param(config, "pixels_per_scanline", 1, 1 << 24);
  Bytes out(size);
  size_t n = out.size();
  const int rc = SZ_BufftoBuffDecompress(out.data(), &n, in.data() + 4, in.size() - 4, &p);
  if (rc != SZ_OK || n != size)
    throw Error(ErrorKind::Source, "szip stream is corrupt (libaec: " + std::to_string(rc) + ")");
  return out;
}

}  // namespace zp
