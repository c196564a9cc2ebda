#include "source/netcdf4/hdf5_storage.hpp"

#include <algorithm>
#include <memory>
#include <vector>

#include "codec/hdf5_filters.hpp"
#include "core/error.hpp"
#include "source/netcdf4/hdf5_links.hpp"
#include "source/netcdf4/hdf5_readable_driver.hpp"

namespace zp {

// A dataset whose raw data lives outside the file: external raw storage (a list of files HDF5
// opens by name) or a virtual dataset (mapped from other files). HDF5 would open those names on
// the local file system, even for a file fetched from a server, and a read fills what it cannot
// open with fill values: both are refused before anything of the dataset is read.
void check_storage_inside_the_file(hid_t dcpl, const std::string& where) {
  if (H5Pget_layout(dcpl) == H5D_VIRTUAL)
    throw Error::source(where,
                        "is an HDF5 virtual dataset (its data lives in other files); "
                        "zarr-parallel reads only data stored inside the file");
  const int external = H5Pget_external_count(dcpl);
  if (external != 0) {
    char name[256] = {};
    off_t offset = 0;
    hsize_t size = 0;
    if (external > 0) H5Pget_external(dcpl, 0, sizeof name - 1, name, &offset, &size);
    throw Error::source(where, "stores its data in external files (the first: '" +
                                   std::string(name) +
                                   "'); zarr-parallel reads only data stored inside the file");
  }
}

namespace {

// The chunk shape, the filters as codecs, and each chunk's place from HDF5's chunk index.
void chunked_storage(hid_t dset, hid_t dcpl, Variable& v, const std::string& where) {
  const std::size_t nd = v.ndim();
  std::vector<hsize_t> cdims(nd);
  H5Pget_chunk(dcpl, static_cast<int>(nd), cdims.data());
  std::vector<int64_t> chunk(cdims.begin(), cdims.end());
  v.grid = ChunkGrid::regular(v.shape, chunk, where);
  const int nfilters = H5Pget_nfilters(dcpl);
  for (int i = 0; i < nfilters; ++i) {
    unsigned flags = 0;
    std::size_t ncd = 16;
    std::vector<unsigned> cd(16);
    char fname[256];
    unsigned config = 0;
    const H5Z_filter_t id = H5Pget_filter2(dcpl, static_cast<unsigned>(i), &flags, &ncd, cd.data(),
                                           sizeof fname, fname, &config);
    cd.resize(std::min<std::size_t>(ncd, 16));
    v.codecs.push_back(codec_from_hdf5_filter(id, cd, v.dtype.size, where));
  }
  const int64_t n = v.grid.num_chunks();
  v.chunks.resize(static_cast<std::size_t>(n));
  std::vector<hsize_t> offset(nd);
  for (int64_t idx = 0; idx < n; ++idx) {
    const std::vector<int64_t> c = v.grid.coords(idx);
    for (std::size_t d = 0; d < nd; ++d) offset[d] = static_cast<hsize_t>(c[d] * chunk[d]);
    unsigned mask = 0;
    haddr_t addr = HADDR_UNDEF;
    hsize_t size = 0;
    if (H5Dget_chunk_info_by_coord(dset, offset.data(), &mask, &addr, &size) < 0)
      hdf5_failed(where, "cannot read the HDF5 chunk index");
    auto& ref = v.chunks[static_cast<std::size_t>(idx)];
    if (addr != HADDR_UNDEF) {
      ref.kind = ChunkRef::Kind::Range;
      ref.offset = addr;
      ref.length = size;
      ref.filter_mask = mask;
    }
  }
}

// A compact dataset's values, stored in its header: read here, one inline chunk.
void compact_storage(hid_t dset, hid_t type, Variable& v, const std::string& where) {
  H5Handle native{H5Tget_native_type(type, H5T_DIR_ASCEND), H5Tclose};
  auto all = std::make_shared<Bytes>(
      static_cast<std::size_t>(v.num_elements()) * static_cast<std::size_t>(v.dtype.size), 0);
  if (H5Dread(dset, native.id, H5S_ALL, H5S_ALL, H5P_DEFAULT, all->data()) < 0)
    hdf5_failed(where, "cannot read compact dataset");
  v.dtype.big_endian = false;
  v.grid = ChunkGrid::regular(v.shape, v.shape);
  all->resize(v.chunk_bytes(), 0);
  v.chunks.assign(1, ChunkRef{ChunkRef::Kind::Inline, 0, 0, 0, 0, all});
}

// Contiguous or compact: cut into slabs along dim 0 of at most ~16 MiB, each a byte range.
void unchunked_storage(hid_t dset, hid_t type, H5D_layout_t layout, Variable& v,
                       const std::string& where) {
  std::vector<int64_t> chunk = v.shape;
  const std::size_t row = v.num_elements() /
                          std::max<int64_t>(v.shape.empty() ? 1 : v.shape[0], 1) *
                          static_cast<std::size_t>(v.dtype.size);
  if (v.ndim() > 0 && row > 0)
    chunk[0] = std::clamp<int64_t>(static_cast<int64_t>((16u << 20) / row), 1,
                                   std::max<int64_t>(v.shape[0], 1));
  for (auto& c : chunk) c = std::max<int64_t>(c, 1);
  v.grid = ChunkGrid::regular(v.shape, chunk, where);
  v.chunks.assign(static_cast<std::size_t>(v.grid.num_chunks()), ChunkRef{});
  if (layout == H5D_COMPACT) return compact_storage(dset, type, v, where);
  const haddr_t addr = H5Dget_offset(dset);
  if (addr == HADDR_UNDEF) return;  // never written: all missing
  const uint64_t slab = static_cast<uint64_t>(chunk[0]) * row;
  const uint64_t total =
      static_cast<uint64_t>(v.num_elements()) * static_cast<uint64_t>(v.dtype.size);
  for (std::size_t i = 0; i < v.chunks.size(); ++i) {
    auto& ref = v.chunks[i];
    ref.kind = ChunkRef::Kind::Range;
    ref.offset = addr + i * slab;
    ref.length = std::min<uint64_t>(slab, total - i * slab);
  }
}

}  // namespace

void describe_hdf5_storage(hid_t dataset, Variable& v, const std::string& where) {
  H5Handle type{H5Dget_type(dataset), H5Tclose};
  v.dtype.big_endian = v.dtype.size > 1 && H5Tget_order(type.id) == H5T_ORDER_BE;
  H5Handle dcpl{H5Dget_create_plist(dataset), H5Pclose};
  check_storage_inside_the_file(dcpl.id, where);
  const H5D_layout_t layout = H5Pget_layout(dcpl.id);
  if (layout == H5D_CHUNKED) return chunked_storage(dataset, dcpl.id, v, where);
  unchunked_storage(dataset, type.id, layout, v, where);
}

}  // namespace zp
