// numcodecs' VLenUTF8 / VLenBytes (the object codecs zarr-python and xarray use for str and bytes
// arrays): a little-endian uint32 item count, then per item a uint32 length and its bytes. Inside
// zarr-parallel such values are fixed-width bytes ('S' of the longest item, zero-padded, as numpy
// holds them), so encoding drops each item's zero padding and decoding restores it.
#include <cstring>

#include "codec/codec.hpp"
#include "core/error.hpp"

namespace zp {

namespace {

uint32_t read_u32(const Bytes& in, std::size_t at) {
  if (at + 4 > in.size())
    throw Error(ErrorKind::Source, "vlen: truncated at byte " + std::to_string(at));
  return static_cast<uint32_t>(in[at]) | static_cast<uint32_t>(in[at + 1]) << 8 |
         static_cast<uint32_t>(in[at + 2]) << 16 | static_cast<uint32_t>(in[at + 3]) << 24;
}

void put_u32(Bytes& out, std::size_t v) {
  for (int k = 0; k < 4; ++k) out.push_back(static_cast<unsigned char>(v >> (8 * k)));
}

}  // namespace

std::vector<std::string> vlen_items(const Bytes& in) {
  const uint32_t n = read_u32(in, 0);
  if (n > in.size() / 4)
    throw Error(ErrorKind::Source, "vlen: item count " + std::to_string(n) + " exceeds the data");
  std::vector<std::string> items;
  items.reserve(n);
  std::size_t at = 4;
  for (uint32_t i = 0; i < n; ++i) {
    const uint32_t len = read_u32(in, at);
    at += 4;
    if (len > in.size() - at)
      throw Error(ErrorKind::Source, "vlen: item " + std::to_string(i) + " overruns the data");
    items.emplace_back(reinterpret_cast<const char*>(in.data() + at), len);
    at += len;
  }
  return items;
}

// `size_hint` (the fixed-width chunk's bytes) divided by the item count gives the width.
Bytes vlen_decode(const Bytes& in, const nlohmann::json&, std::size_t size_hint) {
  const auto items = vlen_items(in);
  if (items.empty()) return {};
  const std::size_t width = size_hint / items.size();
  if (width == 0 || width * items.size() != size_hint)
    throw Error(ErrorKind::Source, "vlen: " + std::to_string(items.size()) + " items do not fill " +
                                       std::to_string(size_hint) + " bytes");
  Bytes out(size_hint, 0);
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (items[i].size() > width)
      throw Error(ErrorKind::Source, "vlen: item " + std::to_string(i) + " is longer than " +
                                         std::to_string(width) + " bytes");
    std::memcpy(out.data() + i * width, items[i].data(), items[i].size());
  }
  return out;
}

Bytes vlen_encode(const Bytes& in, const nlohmann::json&, int itemsize) {
  const auto width = static_cast<std::size_t>(itemsize);
  const std::size_t n = width ? in.size() / width : 0;
  Bytes out;
  out.reserve(4 + in.size() + 4 * n);
  put_u32(out, n);
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char* p = in.data() + i * width;
    std::size_t len = width;
    while (len > 0 && p[len - 1] == 0) --len;
    put_u32(out, len);
    out.insert(out.end(), p, p + len);
  }
  return out;
}

}  // namespace zp
