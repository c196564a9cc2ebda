// The join: the parts of many files (each file's ScanPart, or a child's already joined run of
// them) into one Dataset along concat_dim, as xarray's open_mfdataset(combine="nested") joins
// them. Files must agree on everything but concat_dim (dtype, other dims and their chunking,
// coordinates, time units); chunking along concat_dim, codecs and CF decoding may differ per file
// and are kept as runs.
#pragma once

#include <string>
#include <vector>

#include "source/dataset.hpp"
#include "source/scan_cache.hpp"

namespace zp {

// The join dimension: `concat_dim_in`, or else the first file's unlimited dimension. Error(Config)
// when several files have none, or `first` lacks it.
std::string resolve_concat_dim(const Dataset& first, const std::string& concat_dim_in,
                               const std::vector<std::string>& files, const std::string& uri);
// Joins parts along concat_dim: part i holds files[first_file[i]] and those up to the next part's.
// Throws Error(Source) naming the file that cannot be joined.
Dataset join_parts(std::vector<ScanPart> scanned, const std::vector<std::string>& files,
                   const std::vector<std::size_t>& first_file, const std::string& concat_dim,
                   const std::string& uri);

}  // namespace zp
