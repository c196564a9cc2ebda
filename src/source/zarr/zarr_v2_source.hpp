// Zarr v2 metadata as a source: .zattrs and each array's .zarray and .zattrs (dtype, shape,
// chunks, order, filters, compressor, fill_value, _ARRAY_DIMENSIONS) into a Dataset whose
// manifest points at each chunk's reference. Text object arrays (|O) are read whole.
#pragma once

#include <string>

#include "source/dataset.hpp"
#include "source/zarr/reference_set.hpp"
#include "store/store_table.hpp"

namespace zp {

// Objects the references point at are read through `access` in `role`. Nested groups are not
// read (dataset_from_references picks the group).
Dataset dataset_from_zarr_v2(const ReferenceSet& refs, const std::string& uri,
                             const std::string& engine, SourceAccess& access, AccessRole role);

}  // namespace zp
