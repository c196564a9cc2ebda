// The normalised form of every source: a dataset description (dimensions, variables, dtypes,
// attributes, CF encoding) plus, per variable, a chunk manifest (for each source chunk: where its
// bytes are and which codecs decode them — the shape of a kerchunk reference set). Engines build
// it; the planner and the writer only ever see this. Plain values: copy freely, share read-only
// between threads.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "codec/codec.hpp"
#include "core/dtype.hpp"
#include "store/storage_options.hpp"

namespace zp {

using Attrs = nlohmann::ordered_json;  // attribute order is kept as the source has it

struct ChunkRef {
  enum class Kind : uint8_t {
    Missing,  // never written: reads as the variable's missing_chunk_value
    Range,    // bytes [offset, offset + length) of files[file]
    Inline,   // bytes held in `data`
  };
  Kind kind = Kind::Missing;
  uint32_t file = 0;
  uint64_t offset = 0;
  uint64_t length = 0;
  uint32_t filter_mask = 0;  // HDF5: bit i set means filter i was skipped for this chunk
  std::shared_ptr<const Bytes> data;
};

// A chunk grid that may be irregular along a dimension (files of different lengths joined along
// concat_dim). Every stored chunk has the nominal `chunk_shape`; cells at array edges are smaller.
struct ChunkGrid {
  std::vector<int64_t> chunk_shape;
  std::vector<std::vector<int64_t>> edges;  // per dim: 0 = e0 < e1 < ... < en = size

  // Refuses (Error(Source) naming `where`) shapes and grids beyond the budget (core/budget.hpp).
  static ChunkGrid regular(const std::vector<int64_t>& shape, const std::vector<int64_t>& chunks,
                           const std::string& where = "");
  std::size_t ndim() const { return chunk_shape.size(); }
  int64_t chunks_along(std::size_t dim) const {
    return static_cast<int64_t>(edges[dim].size()) - 1;
  }
  int64_t num_chunks() const;
  // Index of the chunk holding element `index` along `dim`.
  int64_t chunk_of(std::size_t dim, int64_t index) const;
  int64_t linear_index(const std::vector<int64_t>& chunk) const;  // C order
  std::vector<int64_t> coords(int64_t linear_index) const;        // its inverse
};

struct Variable {
  std::string name;
  std::vector<std::string> dims;
  std::vector<int64_t> shape;
  DType dtype;                         // of the stored, decoded bytes (endianness included)
  Attrs attrs;                         // CF attributes except _FillValue (see fill_value)
  nlohmann::json fill_value;           // _FillValue (null when none): what xarray masks
  nlohmann::json missing_chunk_value;  // value of never-written chunks
  std::vector<CodecSpec> codecs;       // encode order
  ChunkGrid grid;
  std::vector<ChunkRef> chunks;  // C order over grid
  std::string origin;            // file or reference key, for messages
  // "vlen-utf8" / "vlen-bytes": variable-length text in the source, cached as xarray's to_zarr
  // writes it (dtype |O with that filter); held here as 'S' of the longest value, zero-padded.
  std::string object_codec;
  // Files joined along concat_dim that CF-decode differently from the first file (ERA5 downloads
  // are packed per file, each with its own scale_factor/add_offset): from Dataset::files index
  // `first_file` on, up to the next run, chunks decode with this run's `attrs` (the keys of
  // kDecodingAttrs) and `fill_value`. Empty: every file decodes as `attrs` and `fill_value` say.
  struct EncodingRun {
    uint32_t first_file = 0;
    Attrs attrs;
    nlohmann::json fill_value;
  };
  std::vector<EncodingRun> encoding_runs;
  // Files joined along concat_dim whose chunks are laid out or compressed differently (monthly
  // contiguous files of 28-31 days, an archive rechunked or recompressed partway): from file
  // `first_file` on, each stored chunk decodes with `codecs` into a buffer of `chunk_shape` (a
  // contiguous file's last slab is that shape's leading rows). The grid's edges give each cell's
  // extent; grid.chunk_shape is then the largest run shape per dimension (buffers and memory are
  // sized by it) and `codecs` the first run's. Empty: every chunk is grid.chunk_shape and `codecs`.
  struct LayoutRun {
    uint32_t first_file = 0;
    std::vector<int64_t> chunk_shape;
    std::vector<CodecSpec> codecs;
  };
  std::vector<LayoutRun> layout_runs;
  static constexpr const char* kDecodingAttrs[] = {"scale_factor", "add_offset", "missing_value"};

  std::size_t ndim() const { return dims.size(); }
  int64_t num_elements() const;
  // This variable as the files from `run` on decode it: its attrs and fill value replaced by the
  // run's (its manifest is dropped: for cf_decoding and messages only).
  Variable decoded_as(const EncodingRun& run) const;
  // Makes the manifest one inline chunk holding the whole array (`data`: C order, `dtype`),
  // without codecs: text read whole, computed labels.
  void hold_whole(Bytes data);
  // The bytes of a variable held whole (one inline chunk, no codecs), else nullptr.
  const Bytes* held_whole() const;
  std::size_t chunk_bytes() const;  // decoded bytes of one nominal chunk (the largest)
  // The layout of the stored chunk `ref` (layout_runs): its buffer's shape, bytes and codecs
  // (a missing chunk's buffer: grid.chunk_shape).
  const std::vector<int64_t>& chunk_shape_of(const ChunkRef& ref) const;
  std::size_t chunk_bytes_of(const ChunkRef& ref) const;
  const std::vector<CodecSpec>& codecs_of(const ChunkRef& ref) const;
  // Empty when layout_runs are sound (numbered from file 0 upwards, each shape within
  // grid.chunk_shape, every cell within its chunk's own shape: a decoded chunk is never read past
  // its end); else what is wrong. Layouts come from untrusted descriptions and plans.
  std::string layout_fault() const;
};

struct Dimension {
  std::string name;
  int64_t size = 0;
  bool unlimited = false;
};

struct Dataset {
  std::string uri;
  std::string engine;              // "netcdf" | "kerchunk" | "zarr"
  std::vector<std::string> files;  // ChunkRef::file indexes this: local paths or URLs
  AccessOptions access;            // how `uri` and `files` are reached (remote sources)
  std::vector<Dimension> dims;
  std::vector<Variable> variables;
  Attrs attrs;
  // Variables the source has but zarr-parallel cannot cache yet (strings, ...): name and what it
  // is. Never dropped silently: the planner refuses them unless `variables:` leaves them out.
  std::vector<std::pair<std::string, std::string>> unsupported;
  std::string group;                // the group read ("" = the root), as open_dataset(group=...)
  std::vector<std::string> groups;  // its subgroups (paths from the root), for inspect and errors

  const Variable* find(const std::string& name) const;
  const Variable& variable(const std::string& name) const;  // throws Error(Config)
  const Dimension* find_dim(const std::string& name) const;
  // Variables that are not the coordinate of a dimension, in source order.
  std::vector<std::string> data_variable_names() const;
  bool is_dimension_coordinate(const Variable& v) const;
};

}  // namespace zp
