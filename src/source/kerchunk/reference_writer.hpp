// A Dataset's description and manifest written as a kerchunk reference set (version 1): what
// `zarr-parallel refs` produces and fsspec's reference filesystem (and our kerchunk engine) read.
// Each chunk is [path, offset, length] or, under `inline_threshold` bytes, its bytes inline (raw
// when ASCII, else "base64:"), as kerchunk writes them. What a reference set cannot express is
// refused naming file and variable: per-chunk HDF5 filter masks, chunk grids made irregular by a
// join, codecs without a numcodecs name, variable-length strings. Char arrays (fixed-length
// bytes, |S n as xarray shows them) are held whole, inline.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "source/dataset.hpp"

namespace zp {

struct RefsOptions {
  int64_t inline_threshold = 500;  // bytes; 0: never inline
  bool relative = false;           // paths relative to `out_dir` instead of absolute
  std::string out_dir;             // the folder the reference set is written to
};

// Values are strings and arrays only (attributes are already dumped), so `.dump()` writes it.
nlohmann::json reference_set_of(const Dataset& ds, const RefsOptions& opt);

}  // namespace zp
