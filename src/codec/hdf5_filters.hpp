// Maps an HDF5 filter (id + client data, as H5Pget_filter2 reports it) to our codec name, so that a
// NetCDF-4 chunk decodes through the same table as a Zarr or kerchunk chunk. Pure function.
#pragma once

#include <string>
#include <vector>

#include "codec/codec.hpp"

namespace zp {

// Throws Error(Source) naming `where` (file and variable) for filters we cannot decode.
CodecSpec codec_from_hdf5_filter(int filter_id, const std::vector<unsigned>& cd_values,
                                 int elementsize, const std::string& where);

}  // namespace zp
