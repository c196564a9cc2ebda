// Byte shuffle as HDF5's filter 2 and numcodecs' Shuffle do it: byte k of every element grouped
// together; trailing bytes that do not fill an element are left in place.
#include "codec/codec.hpp"
#include "core/json_int.hpp"

namespace zp {

static int element_size(const nlohmann::json& config, int fallback) {
  return static_cast<int>(
      json_int_or(config, "elementsize", fallback > 0 ? fallback : 4, "shuffle", 1, 1 << 20));
}

Bytes shuffle_decode(const Bytes& in, const nlohmann::json& config, std::size_t) {
  const std::size_t es = static_cast<std::size_t>(element_size(config, 0));
  if (es <= 1) return in;
  const std::size_t n = in.size() / es;
  Bytes out(in.size());
  for (std::size_t b = 0; b < es; ++b) {
    const unsigned char* src = in.data() + b * n;
    for (std::size_t i = 0; i < n; ++i) out[i * es + b] = src[i];
  }
  std::copy(in.begin() + n * es, in.end(), out.begin() + n * es);
  return out;
}

Bytes shuffle_encode(const Bytes& in, const nlohmann::json& config, int itemsize) {
  const std::size_t es = static_cast<std::size_t>(element_size(config, itemsize));
  if (es <= 1) return in;
  const std::size_t n = in.size() / es;
  Bytes out(in.size());
  for (std::size_t b = 0; b < es; ++b) {
    unsigned char* dst = out.data() + b * n;
    for (std::size_t i = 0; i < n; ++i) dst[i] = in[i * es + b];
  }
  std::copy(in.begin() + n * es, in.end(), out.begin() + n * es);
  return out;
}

}  // namespace zp
