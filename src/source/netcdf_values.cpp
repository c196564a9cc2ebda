#include "source/netcdf_values.hpp"

#include <netcdf.h>  // the default fill values (NC_FILL_*) netCDF-C reports

#include <cmath>
#include <cstdint>
#include <cstring>

namespace zp {

nlohmann::json number_json(const void* data, std::size_t i, DType t, bool spelled) {
  const double v = load_as_double(data, i, t);
  if (!std::isfinite(v) && !spelled) return v;
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (t.kind == 'f') return v;
  if (t.kind == 'u') {
    if (t.size == 8) {
      uint64_t x;
      std::memcpy(&x, static_cast<const char*>(data) + 8 * i, 8);
      return x;
    }
    return static_cast<uint64_t>(v);
  }
  if (t.size == 8) {
    int64_t x;
    std::memcpy(&x, static_cast<const char*>(data) + 8 * i, 8);
    return x;
  }
  return static_cast<int64_t>(v);
}

void default_fill(DType t, unsigned char* out) {
  auto put = [&](auto v) { std::memcpy(out, &v, sizeof v); };
  if (t.kind == 'f') return t.size == 4 ? put(NC_FILL_FLOAT) : put(NC_FILL_DOUBLE);
  const bool u = t.kind == 'u';
  switch (t.size) {
    case 1:
      return u ? put(static_cast<uint8_t>(NC_FILL_UBYTE)) : put(static_cast<int8_t>(NC_FILL_BYTE));
    case 2:
      return u ? put(static_cast<uint16_t>(NC_FILL_USHORT))
               : put(static_cast<int16_t>(NC_FILL_SHORT));
    case 4:
      return u ? put(static_cast<uint32_t>(NC_FILL_UINT)) : put(static_cast<int32_t>(NC_FILL_INT));
    default:
      return u ? put(static_cast<uint64_t>(NC_FILL_UINT64))
               : put(static_cast<int64_t>(NC_FILL_INT64));
  }
}

}  // namespace zp
