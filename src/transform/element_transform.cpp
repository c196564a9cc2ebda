#include "transform/element_transform.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/dtype_dispatch.hpp"

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

DType unsigned_view(const Variable& v) {
  const DType t = v.dtype.native();
  if (!v.attrs.contains("_Unsigned") || !v.attrs["_Unsigned"].is_string()) return t;
  const std::string u = v.attrs["_Unsigned"].get<std::string>();
  if (t.kind == 'i' && u == "true") return {'u', t.size, false};
  if (t.kind == 'u' && u == "false") return {'i', t.size, false};
  return t;
}

json fill_as_viewed(const Variable& v, const json& fill) {
  const DType view = unsigned_view(v);
  if (view == v.dtype.native() || !fill.is_number()) return fill;
  // The same bytes read as the other signedness: numpy's wrap of the integer.
  unsigned char b[8] = {};
  store_from_json(b, 0, v.dtype.native(), fill);
  if (view.size == 8) {
    uint64_t u;
    std::memcpy(&u, b, 8);
    return view.kind == 'u' ? json(u) : json(static_cast<int64_t>(u));
  }
  const double x = load_as_double(b, 0, view);
  return view.kind == 'u' ? json(static_cast<uint64_t>(x)) : json(static_cast<int64_t>(x));
}

Conversion cf_decoding(const Variable& v) {
  // UnsignedIntegerCoder first: the bytes as the other signedness, _FillValue converted with them
  // (missing_value is not: the coder leaves it as it is).
  Conversion c = Conversion::identity(unsigned_view(v));
  add_fills(fill_as_viewed(v, v.fill_value), c.fills);
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
  if (!steps.empty()) {
    json s = json::array();
    for (const auto& st : steps)
      s.push_back(st.op == ValueStep::Op::Scale ? json{{"op", "scale"},
                                                       {"multiply", st.multiply},
                                                       {"add", st.add},
                                                       {"integer_args", st.integer_args}}
                                                : json{{"op", "astype"}, {"to", st.to.str()}});
    j["steps"] = s;
    j["decoded"] = decoded.str();
    j["int_fill"] = int_fill;
  }
  return j;
}

DType step_result(DType t, const ValueStep& step) {
  if (step.op == ValueStep::Op::AsType) return step.to;
  if (t.kind == 'f' || step.integer_args) return t;
  return DType{'f', 8, false};  // an integer array times a float: float64
}

DType numeric_dtype_named(const std::string& name, const std::string& key) {
  static const std::pair<const char*, const char*> kNames[] = {
      {"float32", "<f4"}, {"float64", "<f8"}, {"float", "<f8"}, {"double", "<f8"}, {"int8", "|i1"},
      {"int16", "<i2"},   {"int32", "<i4"},   {"int64", "<i8"}, {"int", "<i8"},    {"uint8", "|u1"},
      {"uint16", "<u2"},  {"uint32", "<u4"},  {"uint64", "<u8"}};
  std::string s = name;
  for (const auto& [n, np] : kNames)
    if (name == n) s = np;
  if (s.size() == 2) s = (s[1] == '1' ? "|" : "<") + s;  // "f4" -> "<f4"
  try {
    const DType t = DType::parse(s);
    if (t.numeric()) return t.native();
  } catch (const Error&) {
  }
  throw Error::config(key, "unknown numeric dtype '" + name +
                               "' (float32, float64, int8..int64, uint8..uint64, or f4, <i2, ...)");
}

Conversion Conversion::from_json(const json& j) {
  Conversion c;
  c.in = DType::parse(j.at("in").get<std::string>());
  c.out = DType::parse(j.at("out").get<std::string>());
  c.decode = j.value("decode", false);
  if (j.contains("steps")) {
    c.decoded = DType::parse(j.at("decoded").get<std::string>());
    c.int_fill = j.at("int_fill").get<double>();
    DType t = c.decoded;
    for (const auto& s : j.at("steps")) {
      ValueStep st;
      if (s.at("op") == "scale") {
        st.multiply = s.at("multiply").get<double>();
        st.add = s.at("add").get<double>();
        st.integer_args = s.at("integer_args").get<bool>();
      } else {
        st.op = ValueStep::Op::AsType;
        st.to = DType::parse(s.at("to").get<std::string>());
      }
      if (!t.numeric() || !step_result(t, st).numeric())
        throw Error::config("conversion", "steps on a non-numeric dtype");
      t = step_result(t, st);
      c.steps.push_back(st);
    }
    if (!(t == c.out)) throw Error::config("conversion", "steps do not end in the output dtype");
  }
  if (c.decode) {
    c.fills = j.value("fills", std::vector<double>{});
    c.has_scale = j.contains("scale_factor");
    c.has_offset = j.contains("add_offset");
    if (c.has_scale) c.scale = j["scale_factor"].get<double>();
    if (c.has_offset) c.offset = j["add_offset"].get<double>();
  }
  return c;
}

namespace {

// x rounded to dtype t (floats) or wrapped to it (integers, as numpy wraps).
double round_to(double x, DType t) {
  if (t.kind == 'f') {
    if (t.size == 8) return x;
    // Beyond float's range numpy gives ±inf; the C++ conversion would be undefined.
    if (std::isfinite(x) && std::fabs(x) > std::numeric_limits<float>::max())
      return std::copysign(std::numeric_limits<double>::infinity(), x);
    return static_cast<double>(static_cast<float>(x));
  }
  if (!std::isfinite(x) || std::fabs(x) >= 9.2e18) return 0;
  const int bits = 8 * t.size;
  const auto v = static_cast<int64_t>(x);
  if (bits == 64) return t.kind == 'u' && v < 0 ? static_cast<double>(static_cast<uint64_t>(v)) : x;
  const uint64_t mask = (uint64_t{1} << bits) - 1;
  uint64_t u = static_cast<uint64_t>(v) & mask;
  if (t.kind == 'i' && (u >> (bits - 1)))
    return static_cast<double>(static_cast<int64_t>(u | ~mask));
  return static_cast<double>(u);
}

// Float to integer as numpy's astype truncates; NaN becomes the fill value; out-of-range values
// saturate (numpy leaves them undefined).
double to_integer(double x, DType t, double fill) {
  if (std::isnan(x)) return fill;
  const int bits = 8 * t.size;
  const double lo = t.kind == 'i' ? -std::ldexp(1.0, bits - 1) : 0.0;
  const double hi = t.kind == 'i' ? std::ldexp(1.0, bits - 1) - 1 : std::ldexp(1.0, bits) - 1;
  return std::clamp(std::trunc(x), lo, hi);
}

void apply_steps(const Conversion& c, const unsigned char* src, std::ptrdiff_t stride,
                 unsigned char* dst, std::size_t n) {
  Conversion base = c;
  base.steps.clear();
  base.out = c.decoded;
  std::vector<unsigned char> decoded(n * static_cast<std::size_t>(c.decoded.size));
  convert_run(base, src, stride, decoded.data(), n);
  for (std::size_t i = 0; i < n; ++i) {
    volatile double x = load_as_double(decoded.data(), i, c.decoded);  // no fused multiply-add
    DType t = c.decoded;
    for (const auto& s : c.steps) {
      const DType r = step_result(t, s);
      if (s.op == ValueStep::Op::AsType) {
        x = r.kind == 'f' ? round_to(x, r)
                          : (t.kind == 'f' ? to_integer(x, r, c.int_fill) : round_to(x, r));
      } else if (r.kind == 'f') {
        // numpy: a python float scalar takes the array's float type first.
        const double m = round_to(s.multiply, r), a = round_to(s.add, r);
        x = round_to(x * m, r);
        x = round_to(x + a, r);
      } else {
        x = round_to(x * s.multiply, r);
        x = round_to(x + s.add, r);
      }
      t = r;
    }
    visit_numeric(c.out, [&](auto v) {
      using T = decltype(v);
      double z = x;
      // Steps leave integers in range; 64-bit ones only need the double's rounding kept in range.
      if constexpr (std::is_integral_v<T>)
        z = std::isfinite(z) ? std::clamp(z, std::is_signed_v<T> ? -9.2e18 : 0.0,
                                          std::is_signed_v<T> ? 9.2e18 : 1.8e19)
                             : 0.0;
      const T y = static_cast<T>(z);
      std::memcpy(dst + i * sizeof(T), &y, sizeof(T));
    });
  }
}

}  // namespace

void convert_run(const Conversion& c, const unsigned char* src, std::ptrdiff_t stride,
                 unsigned char* dst, std::size_t n) {
  if (!c.steps.empty()) return apply_steps(c, src, stride, dst, n);
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
  visit_numeric(c.in, [&](auto t) { decode_from<decltype(t)>(c, src, stride, dst, n); });
}

}  // namespace zp
