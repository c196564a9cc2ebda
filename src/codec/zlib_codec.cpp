// zlib and gzip through libdeflate (one-shot buffers, much faster than zlib's streaming API).
#include <libdeflate.h>

#include <algorithm>
#include <memory>

#include "codec/codec.hpp"
#include "core/error.hpp"
#include "core/json_int.hpp"

namespace zp {

namespace {

using Decompress = libdeflate_result (*)(libdeflate_decompressor*, const void*, size_t, void*,
                                         size_t, size_t*);
using Compress = size_t (*)(libdeflate_compressor*, const void*, size_t, void*, size_t);
using Bound = size_t (*)(libdeflate_compressor*, size_t);

// One decompressor a thread, kept: allocating one per chunk was a malloc and free of its tables
// for each of a run's tens of thousands of chunks.
libdeflate_decompressor* decompressor() {
  thread_local const std::unique_ptr<libdeflate_decompressor,
                                     decltype(&libdeflate_free_decompressor)>
      d(libdeflate_alloc_decompressor(), libdeflate_free_decompressor);
  if (!d) throw Error::internal("libdeflate_alloc_decompressor failed");
  return d.get();
}

// Exactly `size` bytes into `out`; false when the stream holds another number of bytes.
bool inflate_into(const Bytes& in, unsigned char* out, std::size_t size, Decompress fn,
                  const char* name) {
  std::size_t actual = 0;
  const auto r = fn(decompressor(), in.data(), in.size(), out, size, &actual);
  if (r == LIBDEFLATE_SUCCESS) return actual == size;
  if (r == LIBDEFLATE_INSUFFICIENT_SPACE) return false;
  throw Error(ErrorKind::Source, std::string(name) + " stream is corrupt");
}

// At most what the stream may decode to: DEFLATE expands at most 1032:1, and a chunk decodes to
// its expected size (`size_hint`, when known) give or take the filters whose sizes are not known
// in advance. A stream that says more is refused there, not after allocating gigabytes.
std::size_t inflate_limit(const Bytes& in, std::size_t size_hint) {
  const std::size_t by_ratio = in.size() * 1032 + 64;
  return size_hint ? std::min(by_ratio, size_hint + size_hint / 2 + 4096) : by_ratio;
}

Bytes inflate(const Bytes& in, std::size_t size_hint, Decompress fn, const char* name) {
  libdeflate_decompressor* d = decompressor();
  const std::size_t limit = inflate_limit(in, size_hint);
  // The hint is usually exact; grow when a stream is larger, up to the limit.
  std::size_t cap = std::min(limit, size_hint ? size_hint + 16 : in.size() * 4 + 64);
  for (;;) {
    Bytes out(cap);
    std::size_t actual = 0;
    const auto r = fn(d, in.data(), in.size(), out.data(), out.size(), &actual);
    if (r == LIBDEFLATE_SUCCESS) {
      out.resize(actual);
      return out;
    }
    if (r != LIBDEFLATE_INSUFFICIENT_SPACE)
      throw Error(ErrorKind::Source, std::string(name) + " stream is corrupt");
    if (cap >= limit)
      throw Error(
          ErrorKind::Source,
          std::string(name) + " stream decodes to more than " + std::to_string(limit) + " bytes" +
              (size_hint ? " (the chunk holds " + std::to_string(size_hint) + ")" : std::string()));
    cap = std::min(limit, cap * 2);
  }
}

Bytes deflate(const Bytes& in, const nlohmann::json& config, Compress fn, Bound bound) {
  const int level = static_cast<int>(json_int_or(config, "level", 1, "zlib level", 0, 12));
  std::unique_ptr<libdeflate_compressor, decltype(&libdeflate_free_compressor)> c(
      libdeflate_alloc_compressor(level), libdeflate_free_compressor);
  if (!c) throw Error::internal("libdeflate_alloc_compressor failed");
  Bytes out(bound(c.get(), in.size()));
  const std::size_t n = fn(c.get(), in.data(), in.size(), out.data(), out.size());
  if (n == 0) throw Error::internal("libdeflate compression failed");
  out.resize(n);
  return out;
}

}  // namespace

Bytes zlib_decode(const Bytes& in, const nlohmann::json&, std::size_t hint) {
  return inflate(in, hint, libdeflate_zlib_decompress, "zlib");
}
bool zlib_decode_into(const Bytes& in, const nlohmann::json&, unsigned char* out,
                      std::size_t size) {
  return inflate_into(in, out, size, libdeflate_zlib_decompress, "zlib");
}
bool gzip_decode_into(const Bytes& in, const nlohmann::json&, unsigned char* out,
                      std::size_t size) {
  return inflate_into(in, out, size, libdeflate_gzip_decompress, "gzip");
}
Bytes zlib_encode(const Bytes& in, const nlohmann::json& config, int) {
  return deflate(in, config, libdeflate_zlib_compress, libdeflate_zlib_compress_bound);
}
Bytes gzip_decode(const Bytes& in, const nlohmann::json&, std::size_t hint) {
  return inflate(in, hint, libdeflate_gzip_decompress, "gzip");
}
Bytes gzip_encode(const Bytes& in, const nlohmann::json& config, int) {
  return deflate(in, config, libdeflate_gzip_compress, libdeflate_gzip_compress_bound);
}

}  // namespace zp
