// A Zarr store's keys as references to its objects: listed (a folder, an S3 prefix), or over
// plain HTTP, which cannot list, from the consolidated metadata (v2 .zmetadata, v3 zarr.json)
// with each possible chunk asked for by HEAD.
#pragma once

#include <string>

#include "source/zarr/reference_set.hpp"
#include "store/store_table.hpp"

namespace zp {

ReferenceSet load_zarr_store(const std::string& location, SourceAccess& access);

}  // namespace zp
