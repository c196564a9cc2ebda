#include "codec/grib_grid_budget.hpp"

#include <eccodes.h>

#include <cstdint>
#include <vector>

#include "core/budget.hpp"
#include "core/error.hpp"

namespace zp {

namespace {

// The key as a plain long (no array is built); -1 when the key is undefined, or MISSING where
// MISSING is allowed (Ni of a reduced grid). Refuses a negative or (when !may_miss) MISSING value.
int64_t size_key(codes_handle* h, const char* key, bool may_miss, const std::string& where) {
  if (!codes_is_defined(h, key)) return -1;
  int err = 0;
  const bool missing = codes_is_missing(h, key, &err) == 1;
  long v = 0;
  if (!missing && codes_get_long(h, key, &v) != 0) return -1;
  if (missing && may_miss) return -1;
  const std::string at = where + ", key " + key;
  if (missing) throw Error::source(at, "the GRIB grid's point count is MISSING");
  if (v < 0) throw Error::source(at, "a negative GRIB grid size (" + std::to_string(v) + ")");
  budget::checked_product({static_cast<int64_t>(v)}, budget::kGribPoints, at, "GRIB grid points");
  return v;
}

}  // namespace

void check_grib_grid_size(codes_handle* h, const std::string& where) {
  for (const char* key : {"numberOfPoints", "numberOfValues", "numberOfDataPoints"})
    size_key(h, key, false, where);
  for (const auto& [a, b] : {std::pair{"Ni", "Nj"}, std::pair{"Nx", "Ny"}}) {
    const int64_t x = size_key(h, a, true, where), y = size_key(h, b, true, where);
    if (x >= 0 && y >= 0)
      budget::checked_product({x, y}, budget::kGribPoints, where + ", keys " + a + " x " + b,
                              "GRIB grid points");
  }
}

}  // namespace zp
