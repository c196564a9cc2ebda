// Steps that change how elements are laid out rather than what they are: numcodecs' PackBits
// (bools as bits) and Zarr v2's `order: "F"` (a chunk's elements in Fortran order), kept in the one
// codec table so a chunk is decoded by one chain whatever wrote it.
#include <cstring>

#include "codec/codec.hpp"
#include "core/error.hpp"
#include "core/json_int.hpp"

namespace zp {

// numcodecs PackBits: byte 0 = padding bits in the last byte, then np.packbits (first element in
// the most significant bit).
Bytes packbits_decode(const Bytes& in, const nlohmann::json&, std::size_t) {
  if (in.empty()) throw Error(ErrorKind::Source, "packbits: empty input");
  const unsigned pad = in[0];
  if (pad > 7 || (in.size() == 1 && pad != 0))
    throw Error(ErrorKind::Source, "packbits: bad padding count " + std::to_string(pad));
  const std::size_t n = (in.size() - 1) * 8 - pad;
  Bytes out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = (in[1 + i / 8] >> (7 - i % 8)) & 1;
  return out;
}

Bytes packbits_encode(const Bytes& in, const nlohmann::json&, int) {
  Bytes out(1 + (in.size() + 7) / 8, 0);
  out[0] = static_cast<unsigned char>((8 - in.size() % 8) % 8);
  for (std::size_t i = 0; i < in.size(); ++i)
    if (in[i]) out[1 + i / 8] |= static_cast<unsigned char>(0x80u >> (i % 8));
  return out;
}

std::size_t packbits_encoded_size(const nlohmann::json&, std::size_t decoded) {
  return 1 + (decoded + 7) / 8;
}

namespace {

struct Layout {
  std::vector<int64_t> shape;
  std::size_t itemsize = 0;
  std::size_t elements = 1;
};

Layout layout_of(const nlohmann::json& config) {
  Layout l;
  const nlohmann::json shape = config.value("shape", nlohmann::json());
  if (!shape.is_array() || shape.empty())
    throw Error(ErrorKind::Source, "order F: bad chunk shape");
  for (const auto& s : shape) {
    if (!s.is_number_integer() || s.get<int64_t>() <= 0 || s.get<int64_t>() > (int64_t{1} << 40) ||
        l.elements > (std::size_t{1} << 40) / static_cast<std::size_t>(s.get<int64_t>()))
      throw Error(ErrorKind::Source, "order F: bad chunk shape " + shape.dump());
    l.shape.push_back(s.get<int64_t>());
    l.elements *= static_cast<std::size_t>(l.shape.back());
  }
  l.itemsize = static_cast<std::size_t>(json_int_or(config, "itemsize", 1, "order F", 1, 1 << 22));
  return l;
}

// Copies between C order (`c`) and Fortran order (`f`) of the same chunk.
void transpose(const Layout& l, const unsigned char* from, unsigned char* to, bool from_f) {
  const std::size_t nd = l.shape.size();
  std::vector<std::size_t> fstride(nd);
  std::size_t s = 1;
  for (std::size_t d = 0; d < nd; ++d) {
    fstride[d] = s;
    s *= static_cast<std::size_t>(l.shape[d]);
  }
  std::vector<int64_t> idx(nd, 0);  // C-order position, last dim fastest
  for (std::size_t c = 0; c < l.elements; ++c) {
    std::size_t f = 0;
    for (std::size_t d = 0; d < nd; ++d) f += static_cast<std::size_t>(idx[d]) * fstride[d];
    const std::size_t src = from_f ? f : c, dst = from_f ? c : f;
    std::memcpy(to + dst * l.itemsize, from + src * l.itemsize, l.itemsize);
    for (std::size_t d = nd; d-- > 0;) {
      if (++idx[d] < l.shape[d]) break;
      idx[d] = 0;
    }
  }
}

}  // namespace

// Config: {"id": "order_f", "shape": chunk shape, "itemsize": bytes}. Not a numcodecs codec: the
// zarr engine adds it first in the chain of arrays whose .zarray says order "F".
Bytes order_f_decode(const Bytes& in, const nlohmann::json& config, std::size_t) {
  const Layout l = layout_of(config);
  if (in.size() != l.elements * l.itemsize)
    throw Error(ErrorKind::Source, "order F: chunk has " + std::to_string(in.size()) +
                                       " bytes, expected " +
                                       std::to_string(l.elements * l.itemsize));
  Bytes out(in.size());
  transpose(l, in.data(), out.data(), true);
  return out;
}

Bytes order_f_encode(const Bytes& in, const nlohmann::json& config, int) {
  const Layout l = layout_of(config);
  if (in.size() != l.elements * l.itemsize) throw Error::internal("order F: wrong chunk size");
  Bytes out(in.size());
  transpose(l, in.data(), out.data(), false);
  return out;
}

}  // namespace zp
