#include "plan/output_array.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "plan/cf_references.hpp"
#include "store/file_store.hpp"

namespace zp {

namespace {

int64_t chunk_for_dim(const Config& cfg, const DimMap& m, int64_t source_chunk) {
  const int64_t n = std::max<int64_t>(m.count, 1);
  if (cfg.chunks_auto) return std::min(source_chunk, n);
  for (const auto& [dim, size] : cfg.chunks)
    if (dim == m.name || dim == m.source) {
      if (size == -1) return n;
      if (size == 0) return std::min(source_chunk, n);
      return std::min(size, n);
    }
  return std::min(source_chunk, n);  // unlisted dimension: keep the source chunking
}

// Whether the output chunk along `m` follows the source ('auto', or the dimension not listed).
bool auto_dim(const Config& cfg, const DimMap& m) {
  if (cfg.chunks_auto) return true;
  for (const auto& [dim, size] : cfg.chunks)
    if (dim == m.name || dim == m.source) return size == 0;
  return true;
}

// 'auto' means the source chunks. Only pathological ones (under kAutoChunkMin: a netCDF-3 record
// of a small grid, HDF5 files chunked for writing) would make a file per few kilobytes: those
// auto dimensions grow by whole source chunks, the first (record) dimension first, to about
// kAutoChunkTarget. An ERA5 chunk (24, 91, 180) of int16 (786 kB) stays as it is.
constexpr uint64_t kAutoChunkMin = 64u << 10;
constexpr uint64_t kAutoChunkTarget = 1u << 20;

void grow_tiny_auto_chunks(ArrayPlan& a, const Config& cfg) {
  auto bytes = [&] {
    uint64_t b = static_cast<uint64_t>(a.conversion.out.size);
    for (auto c : a.chunks) b *= static_cast<uint64_t>(c);
    return b;
  };
  for (std::size_t d = 0; d < a.ndim() && bytes() < kAutoChunkMin; ++d) {
    if (!auto_dim(cfg, a.index[d]) || a.chunks[d] >= a.shape[d]) continue;
    const uint64_t factor =
        std::max<uint64_t>(1, kAutoChunkTarget / std::max<uint64_t>(bytes(), 1));
    const uint64_t grown = static_cast<uint64_t>(a.chunks[d]) * factor;
    a.chunks[d] =
        static_cast<int64_t>(std::min<uint64_t>(grown, static_cast<uint64_t>(a.shape[d])));
  }
}

// An integer array whose _FillValue is not one of its values (NCO writes 1e20 on int16): Zarr's
// fill_value cannot hold it, so it stays an attribute, as the source has it. xarray then reads the
// cache as it reads the source (it masks nothing, since no stored value equals it).
void keep_unfit_fill_as_attribute(ArrayPlan& a) {
  const DType t = a.conversion.out;
  const nlohmann::json& f = a.fill_value;
  if ((t.kind != 'i' && t.kind != 'u') || !f.is_number()) return;
  const double d = f.get<double>();
  const int bits = 8 * t.size;
  const double lo = t.kind == 'i' ? -std::ldexp(1.0, bits - 1) : 0.0;
  const double hi = t.kind == 'i' ? std::ldexp(1.0, bits - 1) - 1 : std::ldexp(1.0, bits) - 1;
  if (d >= lo && d <= hi && d == std::floor(d)) return;
  a.attrs["_FillValue"] = f;
  a.fill_value = nullptr;
}

// The stored chunk's codec chain: the object codec of a |O array, then the configured compressor.
std::vector<CodecSpec> output_chain(const std::string& object_codec, const Config& cfg,
                                    const std::string& array) {
  std::vector<CodecSpec> chain;
  if (!object_codec.empty())
    chain.push_back(CodecSpec{object_codec, nlohmann::json{{"id", object_codec}}});
  if (!cfg.compressor.is_null())
    chain.push_back(codec_spec_from_json(cfg.compressor, "compressor (array " + array + ")"));
  return chain;
}

// Zarr v3 sharding: the shard becomes the write chunk, the configured chunk its inner chunk.
void apply_shards(ArrayPlan& a, const Config& cfg) {
  std::vector<int64_t> shard = a.chunks;
  for (std::size_t d = 0; d < a.ndim(); ++d)
    for (const auto& [dim, size] : cfg.shards)
      if (a.dims[d] == dim || a.index[d].source == dim) {
        if (size % a.chunks[d] != 0)
          throw Error::config("shards." + dim,
                              fmt::format("{} is not a whole multiple of the chunk size {} of "
                                          "array '{}'",
                                          size, a.chunks[d], a.name));
        shard[d] = size;
      }
  a.inner_chunks = a.chunks;
  a.chunks = shard;
}

}  // namespace

// The variable is written as xarray decodes it (a.conversion = cf_decoding): the attributes that
// said how to decode go, and the fill value is NaN, or the _FillValue as the unsigned view reads
// it.
void drop_decoded_encoding(ArrayPlan& a) {
  a.attrs.erase("_Unsigned");
  if (!a.conversion.decode) {
    a.fill_value = fill_as_viewed(a.source, a.source.fill_value);
    return;
  }
  for (const char* k : {"scale_factor", "add_offset", "missing_value"}) a.attrs.erase(k);
  a.fill_value = "NaN";
}

ArrayPlan make_array(const Selection& sel, const Variable& v, const Config& cfg, bool coordinate) {
  ArrayPlan a;
  a.name = sel.output_name_of_var(v.name);
  a.coordinate = coordinate;
  a.source = v;
  // A relabeled dimension coordinate (roll: auto) is written from its new labels, held inline.
  const auto relabel =
      v.ndim() == 1 && v.dims[0] == v.name ? sel.relabeled.find(v.name) : sel.relabeled.end();
  if (relabel != sel.relabeled.end()) {
    a.source.dtype = v.dtype.native();
    a.source.object_codec.clear();
    a.source.hold_whole(relabel->second.data);
  }
  for (std::size_t d = 0; d < v.ndim(); ++d) {
    const DimMap& m = sel.dim(v.dims[d]);
    a.dims.push_back(m.name);
    a.index.push_back(m);
    a.shape.push_back(m.count);
    a.chunks.push_back(coordinate ? std::max<int64_t>(m.count, 1)
                                  : chunk_for_dim(cfg, m, v.grid.chunk_shape[d]));
  }
  const bool decode = !coordinate && cfg.encoding == "decoded" && v.dtype.numeric();
  a.conversion = decode ? cf_decoding(v) : Conversion::identity(v.dtype);
  a.attrs = v.attrs;
  rename_references(a.attrs, sel);
  a.fill_value = v.fill_value;
  if (decode) drop_decoded_encoding(a);
  // xarray's to_zarr gives float arrays without a _FillValue the fill value NaN; masking NaN
  // changes no value, so readers see the same data either way.
  if (a.fill_value.is_null() && a.conversion.out.kind == 'f') a.fill_value = "NaN";
  keep_unfit_fill_as_attribute(a);
  if (!coordinate) grow_tiny_auto_chunks(a, cfg);
  if (!coordinate && !cfg.shards.empty() && !sel.tiling) apply_shards(a, cfg);
  a.codecs = output_chain(v.object_codec, cfg, a.name);
  a.per_chunk_units.assign(a.ndim(), false);
  return a;
}

// A coordinate computed by the coordinator (tiled labels), written from bytes held in the plan.
ArrayPlan inline_coordinate(const std::string& name, const std::vector<std::string>& dims,
                            const std::vector<int64_t>& shape, DType dtype, Bytes data, Attrs attrs,
                            const nlohmann::json& fill, const Config& cfg) {
  ArrayPlan a;
  a.name = name;
  a.coordinate = true;
  a.dims = dims;
  a.shape = shape;
  for (int64_t s : shape) a.chunks.push_back(std::max<int64_t>(s, 1));
  Variable& v = a.source;
  v.name = name;
  v.dims = dims;
  v.shape = shape;
  v.dtype = dtype;
  v.origin = "tiled labels";
  v.missing_chunk_value = 0;
  v.hold_whole(std::move(data));
  for (std::size_t d = 0; d < dims.size(); ++d)
    a.index.push_back(DimMap::linear(dims[d], dims[d], 0, shape[d], 1));
  a.conversion = Conversion::identity(dtype);
  a.attrs = std::move(attrs);
  a.fill_value = fill;
  a.codecs = output_chain("", cfg, a.name);
  a.per_chunk_units.assign(dims.size(), false);
  return a;
}

}  // namespace zp
