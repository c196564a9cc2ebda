#include "transform/element_transform.hpp"

#include <cmath>
#include <cstring>
#include <limits>

namespace zp {

using json = nlohmann::json;

namespace {

double attr_number(const Attrs& a, const char* key, bool* present) {
  *present = a.contains(key) && (a[key].is_number() || (a[key].is_array() && a[key].size() == 1));
  if (!*present) return 0;
  return a[key].is_array() ? a[key][0].get<double>() : a[key].get<double>();
}

void add_fills(const json& v, std::vector<double>& fills) {
  if (v.is_array()) {
    for (const auto& x : v) add_fills(x, fills);
  } else if (v.is_number()) {
    fills.push_back(v.get<double>());  // NaN fills are strings in our JSON and mask nothing new
  }
}

template <typename In, typename Out>
void decode_run(const Conversion& c, const unsigned char* src, std::ptrdiff_t stride,
                unsigned char* dst, std::size_t n) {
  const Out scale = static_cast<Out>(c.scale), offset = static_cast<Out>(c.offset);
  const Out nan = std::numeric_limits<Out>::quiet_NaN();
  for (std::size_t i = 0; i < n; ++i) {
    In raw;
    std::memcpy(&raw, src + static_cast<std::ptrdiff_t>(i) * stride, sizeof(In));
    Out x = static_cast<Out>(raw);
    for (double f : c.fills)
      if (x == static_cast<Out>(f)) x = nan;
    // Same operation order and precision as xarray: cast, mask, multiply, add.
    if (c.has_scale) x *= scale;
    if (c.has_offset) x += offset;
    std::memcpy(dst + i * sizeof(Out), &x, sizeof(Out));
  }
}

template <typename In>
void decode_from(const Conversion& c, const unsigned char* src, std::ptrdiff_t stride,
                 unsigned char* dst, std::size_t n) {
  if (c.out.size == 4)
    decode_run<In, float>(c, src, stride, dst, n);
  else
    decode_run<In, double>(c, src, stride, dst, n);
}

}  // namespace

Conversion cf_decoding(const Variable& v) {
  Conversion c = Conversion::identity(v.dtype);
  add_fills(v.fill_value, c.fills);
  if (v.attrs.contains("missing_value")) add_fills(v.attrs["missing_value"], c.fills);
  c.scale = attr_number(v.attrs, "scale_factor", &c.has_scale);
  c.offset = attr_number(v.attrs, "add_offset", &c.has_offset);
  if (c.fills.empty() && !c.has_scale && !c.has_offset) return c;
  c.decode = true;
  // xarray's CFMaskCoder promotes to a float type first (dtypes.maybe_promote) ...
  DType t = c.in;
  if (!c.fills.empty() && t.kind != 'f') t = DType{'f', t.size <= 2 ? 4 : 8, false};
  // ... then CFScaleOffsetCoder picks _choose_float_dtype(dtype, has_offset).
  if (c.has_scale || c.has_offset) {
    if (t.kind == 'f' && t.size <= 4)
      t = {'f', 4, false};
    else if (t.kind != 'f' && t.size <= 2 && !c.has_offset)
      t = {'f', 4, false};
    else
      t = {'f', 8, false};
  }
  c.out = t;
  return c;
}

json Conversion::to_json() const {
  json j = {{"in", in.str()}, {"out", out.str()}, {"decode", decode}};
  if (decode) {
    j["fills"] = fills;
    if (has_scale) j["scale_factor"] = scale;
    if (has_offset) j["add_offset"] = offset;
  }
  return j;
}

Conversion Conversion::from_json(const json& j) {
  Conversion c;
  c.in = DType::parse(j.at("in").get<std::string>());
  c.out = DType::parse(j.at("out").get<std::string>());
  c.decode = j.value("decode", false);
  if (c.decode) {
    c.fills = j.value("fills", std::vector<double>{});
    c.has_scale = j.contains("scale_factor");
    c.has_offset = j.contains("add_offset");
    if (c.has_scale) c.scale = j["scale_factor"].get<double>();
    if (c.has_offset) c.offset = j["add_offset"].get<double>();
  }
  return c;
}

void convert_run(const Conversion& c, const unsigned char* src, std::ptrdiff_t stride,
                 unsigned char* dst, std::size_t n) {
  if (!c.decode) {
    const std::size_t s = static_cast<std::size_t>(c.in.size);
    if (stride == static_cast<std::ptrdiff_t>(s)) {
      std::memcpy(dst, src, n * s);
      return;
    }
    for (std::size_t i = 0; i < n; ++i)
      std::memcpy(dst + i * s, src + static_cast<std::ptrdiff_t>(i) * stride, s);
    return;
  }
  switch (c.in.kind) {
    case 'f':
      return c.in.size == 4 ? decode_from<float>(c, src, stride, dst, n)
                            : decode_from<double>(c, src, stride, dst, n);
    case 'i':
      switch (c.in.size) {
        case 1:
          return decode_from<int8_t>(c, src, stride, dst, n);
        case 2:
          return decode_from<int16_t>(c, src, stride, dst, n);
        case 4:
          return decode_from<int32_t>(c, src, stride, dst, n);
        default:
          return decode_from<int64_t>(c, src, stride, dst, n);
      }
    default:
      switch (c.in.size) {
        case 1:
          return decode_from<uint8_t>(c, src, stride, dst, n);
        case 2:
          return decode_from<uint16_t>(c, src, stride, dst, n);
        case 4:
          return decode_from<uint32_t>(c, src, stride, dst, n);
        default:
          return decode_from<uint64_t>(c, src, stride, dst, n);
      }
  }
}

}  // namespace zp
