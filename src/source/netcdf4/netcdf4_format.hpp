// NetCDF-4/HDF5 as a file format of the netcdf engine (format.hpp): described through libhdf5
// (netcdf4_reader.hpp), a local file opened by path, a remote one through its Readable
// (hdf5_readable_driver.hpp), in a child process.
#pragma once

#include "source/format.hpp"

namespace zp {

FileFormat netcdf4_format();

}  // namespace zp
