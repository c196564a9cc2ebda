// Zarr v2 metadata of the cache: .zgroup, .zattrs, each array's .zarray and .zattrs (with xarray's
// _ARRAY_DIMENSIONS), and the consolidated .zmetadata that xarray.open_zarr reads first.
#pragma once

#include <nlohmann/json.hpp>

#include "plan/plan.hpp"
#include "store/file_store.hpp"

namespace zp {

nlohmann::json zarray_json(const ArrayPlan& a);
// The codecs a stored chunk goes through, in encode order: the object codec of |O arrays, then
// the compressor.
std::vector<CodecSpec> output_codecs(const ArrayPlan& a);
nlohmann::ordered_json zattrs_json(const ArrayPlan& a);

// Writes every metadata key except .zmetadata (written last, by write_consolidated).
void write_metadata(const Plan& plan, const FileStore& store);
void write_consolidated(const Plan& plan, const FileStore& store);
// The .zmetadata document: every other metadata key's content, as zarr-python consolidates it.
nlohmann::ordered_json consolidated_json(const Plan& plan);

}  // namespace zp
