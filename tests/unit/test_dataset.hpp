// Builders of small in-memory datasets for unit tests: a regular chunk grid, every chunk present
// with a made-up stored length, and 1-D coordinates.
#pragma once

#include <string>
#include <vector>

#include "source/dataset.hpp"
#include "transform/selection.hpp"

namespace zp::testing {

inline Variable make_variable(const std::string& name, const std::vector<std::string>& dims,
                              const std::vector<int64_t>& shape, const std::vector<int64_t>& chunks,
                              DType dtype = {'i', 2, false}) {
  Variable v;
  v.name = name;
  v.dims = dims;
  v.shape = shape;
  v.dtype = dtype;
  v.grid = ChunkGrid::regular(shape, chunks);
  v.chunks.resize(static_cast<std::size_t>(v.grid.num_chunks()));
  for (std::size_t i = 0; i < v.chunks.size(); ++i) {
    v.chunks[i].kind = ChunkRef::Kind::Range;
    v.chunks[i].offset = i * 1000;
    v.chunks[i].length = 100 + i % 7;
  }
  v.missing_chunk_value = 0;
  return v;
}

// A dataset with one data variable "x" over dims d0.. and ascending integer coordinates.
inline Dataset make_dataset(const std::vector<int64_t>& shape, const std::vector<int64_t>& chunks) {
  Dataset ds;
  ds.uri = "test";
  ds.files = {"test.nc"};
  std::vector<std::string> dims;
  for (std::size_t d = 0; d < shape.size(); ++d) {
    dims.push_back("d" + std::to_string(d));
    ds.dims.push_back({dims.back(), shape[d], false});
  }
  ds.variables.push_back(make_variable("x", dims, shape, chunks));
  return ds;
}

inline Coordinates index_coordinates(const Dataset& ds, bool descending_first = false) {
  Coordinates c;
  for (std::size_t d = 0; d < ds.dims.size(); ++d) {
    CoordinateValues v;
    for (int64_t i = 0; i < ds.dims[d].size; ++i)
      v.values.push_back(descending_first && d == 0 ? static_cast<double>(ds.dims[d].size - 1 - i)
                                                    : static_cast<double>(i));
    c[ds.dims[d].name] = v;
  }
  return c;
}

}  // namespace zp::testing
