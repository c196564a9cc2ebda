#include "source/kerchunk/reference_chunks.hpp"

#include <algorithm>
#include <cstring>

#include "codec/codec.hpp"
#include "core/dtype.hpp"
#include "core/error.hpp"

namespace zp {

namespace {

// Slabs smaller than this are not worth a reference each: one chunk holds the variable instead.
constexpr uint64_t kMinSlabBytes = 64 << 10;

bool short_slab(const Variable& v, const ChunkRef& r) {
  return r.kind == ChunkRef::Kind::Range && r.length < v.chunk_bytes();
}

// Slabs: chunks cut along dim 0 only, each a range of one file, one after the other.
bool contiguous_slabs(const Variable& v) {
  for (std::size_t d = 1; d < v.ndim(); ++d)
    if (v.grid.chunk_shape[d] != v.shape[d]) return false;
  const ChunkRef& first = v.chunks.front();
  const uint64_t step = v.chunk_bytes();
  for (std::size_t i = 0; i < v.chunks.size(); ++i) {
    const ChunkRef& r = v.chunks[i];
    if (r.kind != ChunkRef::Kind::Range || r.file != first.file ||
        r.offset != first.offset + i * step)
      return false;
  }
  return true;
}

// The variable cut anew along dim 0 into `rows`-row slabs of the same bytes.
Variable recut(const Variable& v, int64_t rows, const std::string& where) {
  Variable out = v;
  const uint64_t row_bytes = v.chunk_bytes() / static_cast<uint64_t>(v.grid.chunk_shape[0]);
  std::vector<int64_t> chunk = v.grid.chunk_shape;
  chunk[0] = rows;
  out.grid = ChunkGrid::regular(v.shape, chunk, where);
  const ChunkRef first = v.chunks.front();
  out.chunks.assign(static_cast<std::size_t>(out.grid.num_chunks()), first);
  const uint64_t step = static_cast<uint64_t>(rows) * row_bytes;
  for (std::size_t i = 0; i < out.chunks.size(); ++i) {
    out.chunks[i].offset = first.offset + i * step;
    out.chunks[i].length = step;
  }
  return out;
}

// The most rows a slab may hold that divide dim 0 exactly, at most as many as now.
int64_t dividing_rows(const Variable& v) {
  const int64_t n = v.shape[0];
  for (int64_t rows = std::min(v.grid.chunk_shape[0], n); rows > 1; --rows)
    if (n % rows == 0) return rows;
  return 1;
}

}  // namespace

std::optional<Variable> full_length_slabs(const Variable& v,
                                          const std::function<uint64_t(uint32_t)>& size_of,
                                          const std::string& where) {
  if (!v.codecs.empty() || v.ndim() == 0 || v.chunks.empty()) return std::nullopt;
  if (std::none_of(v.chunks.begin(), v.chunks.end(),
                   [&](const ChunkRef& r) { return short_slab(v, r); }))
    return std::nullopt;
  Variable out = v;
  bool fits = true;
  for (auto& r : out.chunks) {
    if (!short_slab(v, r)) continue;
    if (r.offset + v.chunk_bytes() <= size_of(r.file))
      r.length = v.chunk_bytes();
    else
      fits = false;
  }
  if (fits) return out;
  // The last slab ends the file: slabs that divide dim 0 exactly, all of full length.
  if (!contiguous_slabs(v))
    throw Error::source(where,
                        "an uncompressed chunk ends the file short of its chunk size; a "
                        "reference set needs every chunk whole");
  const int64_t rows = dividing_rows(v);
  const uint64_t row_bytes = v.chunk_bytes() / static_cast<uint64_t>(v.grid.chunk_shape[0]);
  if (static_cast<uint64_t>(rows) * row_bytes >= kMinSlabBytes) return recut(v, rows, where);
  return recut(v, v.shape[0], where);
}

std::optional<NeverWritten> never_written_chunk(const Variable& v,
                                                const std::vector<CodecSpec>& chain,
                                                const std::string& where) {
  if (std::none_of(v.chunks.begin(), v.chunks.end(),
                   [](const ChunkRef& r) { return r.kind == ChunkRef::Kind::Missing; }))
    return std::nullopt;
  if (v.missing_chunk_value.is_null() || !v.dtype.numeric()) return std::nullopt;
  const DType t = v.dtype.native();
  NeverWritten out;
  if (!v.fill_value.is_null()) {
    unsigned char a[16] = {}, b[16] = {};
    fill_elements(a, 1, t, v.fill_value);
    fill_elements(b, 1, t, v.missing_chunk_value);
    out.absent_reads_right = std::memcmp(a, b, static_cast<std::size_t>(t.size)) == 0;
  }
  for (const auto& c : chain) {
    const Codec* codec = find_codec(c.id);
    if (!codec || !codec->encode)
      throw Error::source(where, "has never-written chunks and '" + c.id +
                                     "' cannot be written to hold them in the reference set");
  }
  Bytes chunk(v.chunk_bytes());
  const std::size_t n = chunk.size() / static_cast<std::size_t>(t.size);
  fill_elements(chunk.data(), n, t, v.missing_chunk_value);
  const auto unit = static_cast<std::size_t>(v.dtype.swap_unit());
  if (v.dtype.big_endian) byteswap(chunk.data(), chunk.size() / unit, static_cast<int>(unit));
  out.stored = encode_chain(chain, std::move(chunk), v.dtype.size);
  return out;
}

}  // namespace zp
