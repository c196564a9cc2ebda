// numcodecs' array filters as zarr-python writes them in .zarray "filters": Delta,
// FixedScaleOffset, Quantize and AsType. Each stores elements of one dtype (`astype`,
// `encode_dtype`) that decode to another (`dtype`, `decode_dtype`); decoding follows numcodecs'
// numpy expressions, so values are bit for bit what zarr-python reads. Decode only.
#include <cmath>
#include <cstring>
#include <limits>

#include "codec/codec.hpp"
#include "core/dtype.hpp"
#include "core/error.hpp"

namespace zp {

namespace {

DType dtype_field(const nlohmann::json& config, const char* key, const char* fallback_key) {
  const nlohmann::json* v = config.contains(key) ? &config[key] : nullptr;
  if ((!v || v->is_null()) && fallback_key && config.contains(fallback_key))
    v = &config[fallback_key];
  if (!v || !v->is_string())
    throw Error(ErrorKind::Source, std::string("filter needs a dtype '") + key + "'");
  const DType t = DType::parse(v->get<std::string>());
  if (!t.numeric()) throw Error(ErrorKind::Source, "filter dtype '" + t.str() + "' is not numeric");
  return t;
}

// Element i as the widest type of its kind, so integer values stay exact.
struct Elem {
  double f = 0;
  int64_t i = 0;
  uint64_t u = 0;
};

template <typename T>
T read_as(const unsigned char* bytes) {
  T x;
  std::memcpy(&x, bytes, sizeof x);
  return x;
}

Elem load(const unsigned char* p, std::size_t i, DType t) {
  unsigned char tmp[8];
  std::memcpy(tmp, p + i * static_cast<std::size_t>(t.size), static_cast<std::size_t>(t.size));
  if (t.big_endian) byteswap(tmp, 1, t.size);
  Elem e;
  if (t.kind == 'f') {
    e.f = t.size == 4 ? read_as<float>(tmp) : read_as<double>(tmp);
  } else if (t.kind == 'i') {
    e.i = t.size == 1   ? read_as<int8_t>(tmp)
          : t.size == 2 ? read_as<int16_t>(tmp)
          : t.size == 4 ? read_as<int32_t>(tmp)
                        : read_as<int64_t>(tmp);
    e.u = static_cast<uint64_t>(e.i);
    e.f = static_cast<double>(e.i);
  } else {
    e.u = t.size == 1   ? read_as<uint8_t>(tmp)
          : t.size == 2 ? read_as<uint16_t>(tmp)
          : t.size == 4 ? read_as<uint32_t>(tmp)
                        : read_as<uint64_t>(tmp);
    e.i = static_cast<int64_t>(e.u);
    e.f = static_cast<double>(e.u);
  }
  return e;
}

// Integer targets wrap modulo 2^bits as numpy's casts do; a float converts to an integer by
// truncation (out-of-range and NaN give the type's minimum, as numpy on x86 does, without UB).
void store(unsigned char* p, std::size_t i, DType t, const Elem& e, bool from_float) {
  unsigned char tmp[8];
  if (t.kind == 'f') {
    if (t.size == 4) {
      const float x = static_cast<float>(e.f);
      std::memcpy(tmp, &x, 4);
    } else {
      std::memcpy(tmp, &e.f, 8);
    }
  } else {
    uint64_t bits = e.u;
    if (from_float) {
      const double d = std::trunc(e.f);
      const bool bad = std::isnan(d) || d >= 0x1p63 || d < -0x1p63;
      bits =
          bad ? (uint64_t{1} << (8 * t.size - 1)) : static_cast<uint64_t>(static_cast<int64_t>(d));
    }
    std::memcpy(tmp, &bits, 8);  // little-endian host: the low bytes are the narrow value
  }
  if (t.big_endian) byteswap(tmp, 1, t.size);
  std::memcpy(p + i * static_cast<std::size_t>(t.size), tmp, static_cast<std::size_t>(t.size));
}

std::size_t count_of(const Bytes& in, DType t) {
  if (in.size() % static_cast<std::size_t>(t.size) != 0)
    throw Error(ErrorKind::Source, "filter input is not a whole number of " + t.str() + " items");
  return in.size() / static_cast<std::size_t>(t.size);
}

// out = in.view(from).astype(to)
Bytes cast(const Bytes& in, DType from, DType to) {
  const std::size_t n = count_of(in, from);
  Bytes out(n * static_cast<std::size_t>(to.size));
  for (std::size_t i = 0; i < n; ++i)
    store(out.data(), i, to, load(in.data(), i, from), from.kind == 'f');
  return out;
}

double number_field(const nlohmann::json& config, const char* key, double fallback) {
  if (!config.contains(key) || config[key].is_null()) return fallback;
  if (!config[key].is_number())
    throw Error(ErrorKind::Source, std::string(key) + " must be a number");
  return config[key].get<double>();
}

}  // namespace

// dec = cumsum(enc.view(astype)) as dtype
Bytes delta_decode(const Bytes& in, const nlohmann::json& config, std::size_t) {
  const DType dtype = dtype_field(config, "dtype", nullptr);
  const DType astype = dtype_field(config, "astype", "dtype");
  const std::size_t n = count_of(in, astype);
  Bytes out(n * static_cast<std::size_t>(dtype.size));
  Elem acc;
  for (std::size_t i = 0; i < n; ++i) {
    const Elem e = load(in.data(), i, astype);
    if (astype.kind == 'f') {
      // numpy accumulates in the input's float width
      acc.f = astype.size == 4
                  ? static_cast<double>(static_cast<float>(acc.f) + static_cast<float>(e.f))
                  : acc.f + e.f;
    } else {
      acc.u += e.u;  // two's complement: wrapping sums in 64 bits, truncated on store
      acc.f = astype.kind == 'i' ? static_cast<double>(static_cast<int64_t>(acc.u))
                                 : static_cast<double>(acc.u);
    }
    store(out.data(), i, dtype, acc, astype.kind == 'f');
  }
  return out;
}

// dec = (enc.view(astype) / scale + offset) as dtype, computed in float64
Bytes fixedscaleoffset_decode(const Bytes& in, const nlohmann::json& config, std::size_t) {
  const DType dtype = dtype_field(config, "dtype", nullptr);
  const DType astype = dtype_field(config, "astype", "dtype");
  const double scale = number_field(config, "scale", 1), offset = number_field(config, "offset", 0);
  const std::size_t n = count_of(in, astype);
  Bytes out(n * static_cast<std::size_t>(dtype.size));
  for (std::size_t i = 0; i < n; ++i) {
    Elem e = load(in.data(), i, astype);
    e.f = e.f / scale + offset;
    store(out.data(), i, dtype, e, true);
  }
  return out;
}

// Quantize is lossy on encode; decoding is a cast from astype to dtype.
Bytes quantize_decode(const Bytes& in, const nlohmann::json& config, std::size_t) {
  return cast(in, dtype_field(config, "astype", "dtype"), dtype_field(config, "dtype", nullptr));
}

Bytes astype_decode(const Bytes& in, const nlohmann::json& config, std::size_t) {
  return cast(in, dtype_field(config, "encode_dtype", nullptr),
              dtype_field(config, "decode_dtype", "encode_dtype"));
}

// Bytes a filter stores for `decoded` bytes of its decoded dtype.
std::size_t dtype_filter_encoded_size(const nlohmann::json& config, std::size_t decoded) {
  const std::string id = config.value("id", "");
  const bool as = id == "astype";
  const DType from =
      dtype_field(config, as ? "decode_dtype" : "dtype", as ? "encode_dtype" : nullptr);
  const DType to = dtype_field(config, as ? "encode_dtype" : "astype", as ? nullptr : "dtype");
  return decoded / static_cast<std::size_t>(from.size) * static_cast<std::size_t>(to.size);
}

}  // namespace zp
