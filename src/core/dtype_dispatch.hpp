// The one switch from a numeric DType to its C++ type: visit_numeric(t, f) calls f(T{}) with T the
// element type of t (native byte order). Callers write templates, not switches.
#pragma once

#include <cstdint>

#include "core/dtype.hpp"
#include "core/error.hpp"

namespace zp {

template <typename F>
decltype(auto) visit_numeric(DType t, F&& f) {
  switch (t.kind) {
    case 'f':
      if (t.size == 4) return f(float{});
      return f(double{});
    case 'i':
      switch (t.size) {
        case 1:
          return f(int8_t{});
        case 2:
          return f(int16_t{});
        case 4:
          return f(int32_t{});
        default:
          return f(int64_t{});
      }
    case 'u':
      switch (t.size) {
        case 1:
          return f(uint8_t{});
        case 2:
          return f(uint16_t{});
        case 4:
          return f(uint32_t{});
        default:
          return f(uint64_t{});
      }
    default:
      throw Error::internal("not a numeric dtype: " + t.str());
  }
}

}  // namespace zp
