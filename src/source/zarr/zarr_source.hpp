// The zarr engine, and the kerchunk engine's second half: a store's keys (ReferenceSet) into a
// Dataset, from Zarr v2 metadata (zarr_v2_source.hpp) or for the zarr engine v3 metadata
// (zarr_v3_source.hpp), for the root or one subgroup.
#pragma once

#include <string>

#include "source/dataset.hpp"
#include "source/zarr/reference_set.hpp"
#include "store/store_table.hpp"

namespace zp {

// Builds the description and manifest from the Zarr metadata inside the references; objects they
// point at are read through `access` (local files only when null).
// `group`: a subgroup path ("a/b"): its keys are read as a store of their own; "" = the root.
Dataset dataset_from_references(const ReferenceSet& refs, const std::string& uri,
                                const std::string& engine, const std::string& group = "",
                                SourceAccess* access = nullptr);

}  // namespace zp
