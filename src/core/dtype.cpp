#include "core/dtype.hpp"

#include <cmath>
#include <cstring>
#include <limits>

#include "core/error.hpp"
#include "core/text_codec.hpp"

namespace zp {

DType DType::parse(const std::string& s) {
  if (s.size() < 3) throw Error::config("dtype", "unsupported dtype '" + s + "'");
  DType t;
  const char order = s[0];
  if (order != '<' && order != '>' && order != '|' && order != '=')
    throw Error::config("dtype", "unsupported dtype '" + s + "'");
  t.big_endian = order == '>';
  t.kind = s[1];
  t.size = std::atoi(s.c_str() + 2);
  if (t.kind == 'S' && order == '|' && t.size >= 1 && t.size <= 1 << 20)
    return {'S', t.size, false};
  if (t.kind == 'U' && order != '|' && t.size >= 1 && t.size <= 1 << 18)
    return {'U', 4 * t.size, t.big_endian};
  if (t.kind == 'b' && t.size == 1 && order == '|') return {'b', 1, false};
  const bool ok = (t.kind == 'f' && (t.size == 4 || t.size == 8)) ||
                  ((t.kind == 'i' || t.kind == 'u') &&
                   (t.size == 1 || t.size == 2 || t.size == 4 || t.size == 8));
  if (!ok) throw Error::config("dtype", "unsupported dtype '" + s + "'");
  if (t.size == 1) t.big_endian = false;
  return t;
}

std::string DType::str() const {
  if (kind == 'S') return "|S" + std::to_string(size);
  if (kind == 'U') return std::string(big_endian ? ">" : "<") + "U" + std::to_string(size / 4);
  if (kind == 'b') return "|b1";
  const char order = size == 1 ? '|' : (big_endian ? '>' : '<');
  return std::string(1, order) + kind + std::to_string(size);
}

void byteswap(void* data, std::size_t n, int size) {
  auto* p = static_cast<unsigned char*>(data);
  if (size == 2) {
    for (std::size_t i = 0; i < n; ++i) {
      uint16_t v;
      std::memcpy(&v, p + 2 * i, 2);
      v = __builtin_bswap16(v);
      std::memcpy(p + 2 * i, &v, 2);
    }
  } else if (size == 4) {
    for (std::size_t i = 0; i < n; ++i) {
      uint32_t v;
      std::memcpy(&v, p + 4 * i, 4);
      v = __builtin_bswap32(v);
      std::memcpy(p + 4 * i, &v, 4);
    }
  } else if (size == 8) {
    for (std::size_t i = 0; i < n; ++i) {
      uint64_t v;
      std::memcpy(&v, p + 8 * i, 8);
      v = __builtin_bswap64(v);
      std::memcpy(p + 8 * i, &v, 8);
    }
  }
}

template <typename T>
static T load(const void* data, std::size_t i) {
  T v;
  std::memcpy(&v, static_cast<const char*>(data) + i * sizeof(T), sizeof(T));
  return v;
}

double load_as_double(const void* data, std::size_t i, DType t) {
  switch (t.kind) {
    case 'S':
    case 'U':
      return 0;  // text has no numeric value
    case 'b':
      return load<uint8_t>(data, i) != 0;
    case 'f':
      return t.size == 4 ? load<float>(data, i) : load<double>(data, i);
    case 'i':
      switch (t.size) {
        case 1:
          return load<int8_t>(data, i);
        case 2:
          return load<int16_t>(data, i);
        case 4:
          return load<int32_t>(data, i);
        default:
          return static_cast<double>(load<int64_t>(data, i));
      }
    default:
      switch (t.size) {
        case 1:
          return load<uint8_t>(data, i);
        case 2:
          return load<uint16_t>(data, i);
        case 4:
          return load<uint32_t>(data, i);
        default:
          return static_cast<double>(load<uint64_t>(data, i));
      }
  }
}

static double json_number(const nlohmann::json& v) {
  if (v.is_null()) return 0.0;
  if (v.is_number()) return v.get<double>();
  if (v.is_string()) {
    const auto s = v.get<std::string>();
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  throw Error::config("fill_value", "not a number: " + v.dump());
}

template <typename T>
static void put(void* data, std::size_t i, T v) {
  std::memcpy(static_cast<char*>(data) + i * sizeof(T), &v, sizeof(T));
}

namespace {

// Text, zero-padded (null or 0: all zero).
void store_text(void* data, std::size_t i, DType t, const nlohmann::json& value) {
  auto* p = static_cast<unsigned char*>(data) + i * static_cast<std::size_t>(t.size);
  std::memset(p, 0, static_cast<std::size_t>(t.size));
  if (!value.is_string()) return;
  const auto& s = value.get_ref<const std::string&>();
  const auto b = t.kind == 'S' ? decode_base64(s, "fill_value")
                               : ucs4_from_utf8(s, t.big_endian, "fill_value");
  if (!b.empty()) std::memcpy(p, b.data(), std::min(b.size(), static_cast<std::size_t>(t.size)));
}

// `v` stored as the integer of `size` bytes (T8..T32, or Wide itself for 8).
template <typename Wide, typename T8, typename T16, typename T32>
void put_sized(void* data, std::size_t i, int size, Wide v) {
  switch (size) {
    case 1:
      return put<T8>(data, i, static_cast<T8>(v));
    case 2:
      return put<T16>(data, i, static_cast<T16>(v));
    case 4:
      return put<T32>(data, i, static_cast<T32>(v));
    default:
      return put<Wide>(data, i, v);
  }
}

// A JSON integer into an integer dtype, through int64/uint64 so large values stay exact.
void store_exact_integer(void* data, std::size_t i, DType t, const nlohmann::json& value) {
  if (t.kind == 'i')
    put_sized<int64_t, int8_t, int16_t, int32_t>(data, i, t.size, value.get<int64_t>());
  else
    put_sized<uint64_t, uint8_t, uint16_t, uint32_t>(data, i, t.size, value.get<uint64_t>());
}

// Narrowing a double outside float's range is undefined: such a value is infinite there.
void store_float(void* data, std::size_t i, DType t, double d) {
  if (t.size == 4)
    return put<float>(data, i,
                      std::fabs(d) > std::numeric_limits<float>::max() && std::isfinite(d)
                          ? static_cast<float>(std::copysign(INFINITY, d))
                          : static_cast<float>(d));
  put<double>(data, i, d);
}

}  // namespace

void store_from_json(void* data, std::size_t i, DType t, const nlohmann::json& value) {
  if (t.kind == 'S' || t.kind == 'U') return store_text(data, i, t, value);
  if (t.kind == 'b') {
    const bool on =
        value.is_boolean() ? value.get<bool>() : value.is_number() && value.get<double>() != 0;
    static_cast<unsigned char*>(data)[i] = on ? 1 : 0;
    return;
  }
  if ((t.kind == 'i' || t.kind == 'u') && value.is_number_integer())
    return store_exact_integer(data, i, t, value);
  const double d = json_number(value);
  if (t.kind == 'f') return store_float(data, i, t, d);
  if (!std::isfinite(d) || d < -9.2e18 || d > 1.8e19)
    throw Error(ErrorKind::Source, "value " + value.dump() + " does not fit dtype " + t.str());
  if (t.kind == 'u' && d >= 0)
    return store_from_json(data, i, t, nlohmann::json(static_cast<uint64_t>(d)));
  if (d > 9.2e18)
    throw Error(ErrorKind::Source, "value " + value.dump() + " does not fit dtype " + t.str());
  store_from_json(data, i, t, nlohmann::json(static_cast<int64_t>(d)));
}

void fill_elements(void* data, std::size_t n, DType t, const nlohmann::json& value) {
  if (n == 0) return;
  store_from_json(data, 0, t, value);
  auto* p = static_cast<char*>(data);
  const std::size_t s = static_cast<std::size_t>(t.size);
  // Doubling copies: log(n) memcpy calls.
  std::size_t done = 1;
  while (done < n) {
    const std::size_t k = std::min(done, n - done);
    std::memcpy(p + done * s, p, k * s);
    done += k;
  }
}

}  // namespace zp
