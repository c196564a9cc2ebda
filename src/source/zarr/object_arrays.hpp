// Zarr object arrays (dtype |O) whose values are text: numcodecs VLenUTF8, VLenBytes or Categorize
// as the first filter. They are read whole when the source is scanned and held as fixed-width
// bytes ('S' of the longest value), so selection and rechunking treat them like any array; the
// cache writes them back as |O with VLenUTF8/VLenBytes, as xarray's to_zarr does.
#pragma once

#include <functional>
#include <optional>

#include "source/dataset.hpp"

namespace zp {

// True for the object codecs handled here ("vlen-utf8", "vlen-bytes", "categorize").
bool is_text_object_codec(const std::string& id);

// `v` has its shape, grid, dims and `codecs` (the filters after the object codec and the
// compressor, encode order) set; `raw_chunk(i)` gives chunk i's stored bytes, or nothing when the
// chunk was never written. Sets v.dtype, v.object_codec and one inline chunk; clears v.codecs.
void read_object_array_whole(Variable& v, const nlohmann::json& object_filter,
                             const std::function<std::optional<Bytes>(int64_t)>& raw_chunk,
                             const std::string& where);

}  // namespace zp
