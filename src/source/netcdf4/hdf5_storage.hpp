// The chunk-reference rules of NetCDF-4/HDF5: a variable's grid, codecs (HDF5 filters) and chunk
// manifest from HDF5's description of its dataset — chunked storage from the chunk index,
// contiguous storage cut into byte-range slabs, compact storage read inline. Data stored outside
// the file (external storage, virtual datasets) is refused.
#pragma once

#include <hdf5.h>

#include <string>

#include "source/dataset.hpp"

namespace zp {

// Refuses a dataset (its creation property list `dcpl`) whose data lives in other files.
void check_storage_inside_the_file(hid_t dcpl, const std::string& where);

// Grid and chunk references of a NetCDF-4 variable from HDF5's description of its (open) dataset;
// `where` names it in errors.
void describe_hdf5_storage(hid_t dataset, Variable& v, const std::string& where);

}  // namespace zp
