// Zarr v3 stores as a source: the group's zarr.json (attributes) and each child array's zarr.json
// (data_type, regular chunk grid, default or v2 chunk key encoding, fill_value, codecs, attributes,
// dimension_names) into a Dataset whose manifest points at chunk objects, or for sharded arrays
// at byte ranges inside the shards, read from each shard's index.
#pragma once

#include <string>

#include "source/dataset.hpp"
#include "source/zarr/reference_set.hpp"
#include "store/store_table.hpp"

namespace zp {

// The store's keys hold a v3 group (a root zarr.json).
bool is_zarr_v3(const ReferenceSet& refs);
// The Zarr v3 must-understand rule for the groups from the root down to `group` ("a/b": the root,
// "a" and "a/b"): an extension of a group above may change what the groups below it mean.
void refuse_v3_groups_on_path(const ReferenceSet& refs, const std::string& group,
                              const std::string& uri, SourceAccess& access, AccessRole role);
Dataset dataset_from_zarr_v3(const ReferenceSet& refs, const std::string& uri, SourceAccess& access,
                             AccessRole role);

}  // namespace zp
