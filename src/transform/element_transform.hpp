// Element-wise conversion from source values to output values. `encoding: source` is the identity
// (packed integers kept bit for bit); `encoding: decoded` masks _FillValue/missing_value to NaN
// and applies scale_factor/add_offset in the float type xarray would choose, so the floats we write
// are the ones xarray.open_dataset returns. Pure; thread-safe.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <vector>

#include "core/dtype.hpp"
#include "source/dataset.hpp"

namespace zp {

// A per-variable step on decoded values (the `astype` and `scale` variable transforms), computed
// as numpy computes it on xarray's decoded array: in the current dtype, each operation rounded.
struct ValueStep {
  enum class Op { Scale, AsType };
  Op op = Op::Scale;
  double multiply = 1.0, add = 0.0;  // Scale: x * multiply + add
  bool integer_args = false;         // both integers: integer arithmetic on integer data
  DType to;                          // AsType
};

struct Conversion {
  DType in;
  DType out;
  bool decode = false;        // false: out == in, bytes copied (unless there are steps)
  std::vector<double> fills;  // raw values that become NaN
  bool has_scale = false, has_offset = false;
  double scale = 1.0, offset = 0.0;
  // After decoding (to `decoded`), in order; `out` is the dtype after the last. A NaN cast to an
  // integer dtype becomes `int_fill`.
  std::vector<ValueStep> steps;
  DType decoded;
  double int_fill = 0.0;

  static Conversion identity(DType t) { return {t.native(), t.native()}; }
  nlohmann::json to_json() const;
  static Conversion from_json(const nlohmann::json& j);
};

// The decoding xarray applies to `v` (identity when v has no CF packing or fill value, but then
// still read as unsigned_view(v)).
Conversion cf_decoding(const Variable& v);

// The type xarray's UnsignedIntegerCoder reads v's bytes as: `_Unsigned = "true"` on a signed
// integer gives the unsigned integer of its size, `"false"` on an unsigned one the signed
// integer; otherwise v's own type. Native byte order.
DType unsigned_view(const Variable& v);

// v's _FillValue `fill` as unsigned_view(v) reads its bytes (-1 on an int8 `_Unsigned` flag is
// 255), as the coder converts it; `fill` itself when the view is v's own type.
nlohmann::json fill_as_viewed(const Variable& v, const nlohmann::json& fill);

// The dtype after `step` applied to values of dtype `t` (numpy's result type).
DType step_result(DType t, const ValueStep& step);

// A numpy dtype name ("float32", "f4", "<i2", "uint8", ...) as a numeric DType; Error(Config)
// naming `key` otherwise.
DType numeric_dtype_named(const std::string& name, const std::string& key);

// Converts n elements: source elements `src_stride` bytes apart (may be negative), output
// contiguous.
void convert_run(const Conversion& c, const unsigned char* src, std::ptrdiff_t src_stride,
                 unsigned char* dst, std::size_t n);

}  // namespace zp
