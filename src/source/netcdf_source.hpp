// The netcdf engine: files (one, or a glob joined along concat_dim, join.hpp) into a Dataset.
// Each file is described in the file format its first bytes show (format.hpp: NetCDF-4/HDF5,
// NetCDF-3), in a child process where the format's library may crash (scan_child.hpp,
// scan_children.hpp), and its part kept in the manifest cache (scan_cache.hpp). NetCDF-4 chunk
// locations come from HDF5's chunk index; the bytes are later read and decoded by ChunkReader
// without the HDF5 library (whose global lock would serialise us). NetCDF-3 files have no chunks:
// each record of a variable (or a slab of a fixed-size one) becomes a byte range.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "source/dataset.hpp"
#include "store/store_table.hpp"

namespace zp {

// `concat_dim` empty: the unlimited dimension of the first file. Throws Error(Source) naming the
// file when files cannot be joined (different variables, dtypes, chunking or coordinates).
// `group`: a NetCDF-4 group path ("a/b"), as xarray's open_dataset(group=...); "" = the root.
Dataset open_netcdf(const std::vector<std::string>& files, const std::string& concat_dim,
                    const std::string& uri, const std::string& group = "");

// One NetCDF-4/HDF5 file behind HTTP(S) or S3 (`url`), described through HDF5 reading by range
// through `access` (hdf5_readable_driver.hpp); its chunks are then read by range like a local
// file's. NetCDF-3 files are described from their header (netcdf3_reader.hpp). Globs are refused.
Dataset open_netcdf_url(const std::string& url, const std::string& group, SourceAccess& access);

// Scans one file into its part's text (what `zarr-parallel scan-parts` children print).
std::string scan_part_text(const std::string& path, const std::string& group);
// What `zarr-parallel describe-url URL` prints (the child of open_netcdf_url): the NetCDF-4 file at
// `url` described here, reached with the options and secrets of `access_text` (its stdin).
std::string describe_url_text(const std::string& url, const std::string& group,
                              const std::string& access_text);
// `scan-parts --join`: prints each file's part, then a "#joined" line and the files joined along
// `concat_dim` (what a child of the parallel cold scan returns).
void scan_and_join(const std::vector<std::string>& files, const std::string& group,
                   const std::string& concat_dim, std::ostream& out);

}  // namespace zp
