// NetCDF-3 as a file format of the netcdf engine (format.hpp): recognised by its "CDF" signature,
// described from its header by our own parser (netcdf3_reader.hpp), in this process.
#pragma once

#include "source/format.hpp"

namespace zp {

FileFormat netcdf3_format();

}  // namespace zp
