// What a kerchunk reference set (version 1) needs of a manifest that our chunk reader is lenient
// about. zarr-python reads every chunk at its full nominal size (edge chunks too) and gives an
// absent key the .zarray's fill_value, which xarray then masks; our reader pads a short last
// slab and fills never-written chunks with the value HDF5 or netCDF-C would give.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "source/dataset.hpp"

namespace zp {

// Uncompressed variables cut into slabs along dim 0 (HDF5 contiguous, NetCDF-3 fixed) end with a
// short slab. Returns the variable with slabs zarr can read: the last one referenced at full
// length when the file holds the bytes after it (zarr drops what lies past the shape), else cut
// anew into slabs that divide dim 0 exactly (kerchunk's subchunk rule), or one chunk when those
// would be tiny. nullopt when nothing is short. `size_of`: a file's size, by its index.
std::optional<Variable> full_length_slabs(const Variable& v,
                                          const std::function<uint64_t(uint32_t)>& size_of,
                                          const std::string& where);

// A never-written chunk as the reference set may hold it: its stored bytes (`chain` applied,
// encode order), and whether an absent key would read the same: the .zarray's fill_value (what
// zarr gives, and what xarray masks) is the value the file's never-written chunks hold. fsspec
// before 2023.12 (Debian 12's) raises KeyError for absent keys, so they are best held anyway.
struct NeverWritten {
  Bytes stored;
  bool absent_reads_right = false;
};
// nullopt when the variable has no never-written chunk (or is text). Error(Source) naming
// `where` when the chain cannot be encoded.
std::optional<NeverWritten> never_written_chunk(const Variable& v,
                                                const std::vector<CodecSpec>& chain,
                                                const std::string& where);

}  // namespace zp
