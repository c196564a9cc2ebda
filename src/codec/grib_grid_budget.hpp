// The size of a GRIB message's grid, checked against budget::kGribPoints before ecCodes is asked
// for any array the size of the grid ("values", "latitudes", "distinctLatitudes"...): ecCodes
// allocates those whole and aborts the process (an assertion) when the allocation fails.
#pragma once

#include <string>

typedef struct grib_handle codes_handle;

namespace zp {

// Error(Source) naming `where` and the key when a grid size key (Ni, Nj, Nx, Ny, numberOfPoints,
// numberOfValues, numberOfDataPoints) is negative, when a point count is MISSING, or when the
// grid passes the budget (overflow included).
void check_grib_grid_size(codes_handle* h, const std::string& where);

}  // namespace zp
