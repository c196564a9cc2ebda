// `zarr-parallel refs`: sources (NetCDF-4/HDF5 globs joined along a dimension, a Zarr store, a
// reference set) to a kerchunk reference set file. The file is written atomically, and an
// existing file is replaced only when it is a reference set this command wrote (its
// "zarr_parallel" mark); any other is refused with Error(Store) and left as it was.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "store/storage_options.hpp"

namespace zp {

struct RefsRequest {
  std::vector<std::string> sources;  // globs or paths; several NetCDF globs are joined
  std::string out;
  std::string concat_dim, engine = "auto", group;
  int64_t inline_threshold = 500;
  bool relative = false;
  AccessOptions access;
};

// Writes the reference set; returns a summary {variables, files, chunks, inline}.
nlohmann::json make_refs(const RefsRequest& r);

}  // namespace zp
