// netCDF-C's phony dimensions. An HDF5 dataset without dimension scales (h5py, HDF-EOS5 files)
// gets a dimension per axis named phony_dim_N. netCDF-C numbers them across the file: N counts
// on from every dimension scale of the file (read group by group, datasets before subgroups),
// through the phony dimensions of the groups it matches before (subgroups before their parent,
// in link order). Within its own group an axis reuses a dimension of the same length and the
// same unlimitedness that the dataset does not use yet.
#pragma once

#include <hdf5.h>

#include <string>

namespace zp {

// The number netCDF-C gives the first new phony dimension of `group` ("a/b", "" = the root).
// Reads the metadata of every group of the file (no data). `where` names the file in errors.
int first_phony_id(hid_t file, const std::string& group, const std::string& where);

}  // namespace zp
