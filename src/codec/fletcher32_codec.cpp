// Fletcher-32 checksum as HDF5's filter 3 (and numcodecs' Fletcher32) computes it: 16-bit words
// read big-endian, sums folded every 360 words, checksum appended as 4 little-endian bytes.
#include <cstring>

#include "codec/codec.hpp"
#include "core/error.hpp"

namespace zp {

uint32_t fletcher32_checksum(const unsigned char* data, std::size_t n) {
  uint32_t sum1 = 0, sum2 = 0;
  std::size_t words = n / 2;
  while (words) {
    std::size_t t = words > 360 ? 360 : words;
    words -= t;
    do {
      sum1 += (static_cast<uint32_t>(data[0]) << 8) | data[1];
      data += 2;
      sum2 += sum1;
    } while (--t);
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  if (n % 2) {
    sum1 += static_cast<uint32_t>(data[0]) << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >> 16);
  return (sum2 << 16) | sum1;
}

Bytes fletcher32_decode(const Bytes& in, const nlohmann::json&, std::size_t) {
  if (in.size() < 4) throw Error(ErrorKind::Source, "fletcher32 buffer too short");
  const std::size_t n = in.size() - 4;
  const uint32_t sum = fletcher32_checksum(in.data(), n);
  uint32_t stored;
  std::memcpy(&stored, in.data() + n, 4);
  // HDF5 also accepts the checksum with its 16-bit halves' bytes swapped (files of HDF5 <= 1.6).
  const uint32_t legacy = ((sum & 0xff00ff00u) >> 8) | ((sum & 0x00ff00ffu) << 8);
  if (stored != sum && stored != legacy)
    throw Error(ErrorKind::Source, "fletcher32 checksum mismatch (data corrupted)");
  return Bytes(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(n));
}

Bytes fletcher32_encode(const Bytes& in, const nlohmann::json&, int) {
  Bytes out(in);
  const uint32_t sum = fletcher32_checksum(in.data(), in.size());
  out.resize(in.size() + 4);
  std::memcpy(out.data() + in.size(), &sum, 4);
  return out;
}

}  // namespace zp
