// LZ4 in two framings: numcodecs' LZ4 (4-byte little-endian size, then one block) and HDF5
// filter 32004 (8-byte big-endian total size, 4-byte big-endian block size, then blocks each
// preceded by a 4-byte big-endian compressed size; a block stored raw when it did not shrink).
#include <lz4.h>

#include <cstring>

#include "codec/codec.hpp"
#include "core/error.hpp"
#include "core/json_int.hpp"

namespace zp {

static uint64_t read_be(const unsigned char* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v = (v << 8) | p[i];
  return v;
}

Bytes lz4_decode(const Bytes& in, const nlohmann::json&, std::size_t hint) {
  if (in.size() < 4) throw Error(ErrorKind::Source, "lz4 buffer too short");
  uint32_t size;
  std::memcpy(&size, in.data(), 4);
  if (hint && size > hint + 1024)
    throw Error(ErrorKind::Source, "lz4 header claims too many bytes");
  Bytes out(size);
  const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data()) + 4,
                                    reinterpret_cast<char*>(out.data()),
                                    static_cast<int>(in.size() - 4), static_cast<int>(size));
  if (n < 0 || static_cast<uint32_t>(n) != size)
    throw Error(ErrorKind::Source, "lz4 block is corrupt");
  return out;
}

Bytes lz4_encode(const Bytes& in, const nlohmann::json& config, int) {
  const int accel = static_cast<int>(json_int_or(config, "acceleration", 1, "lz4", 1, 65537));
  Bytes out(4 + static_cast<std::size_t>(LZ4_compressBound(static_cast<int>(in.size()))));
  const uint32_t size = static_cast<uint32_t>(in.size());
  std::memcpy(out.data(), &size, 4);
  const int n = LZ4_compress_fast(
      reinterpret_cast<const char*>(in.data()), reinterpret_cast<char*>(out.data()) + 4,
      static_cast<int>(in.size()), static_cast<int>(out.size() - 4), accel);
  if (n <= 0) throw Error::internal("lz4 compression failed");
  out.resize(4 + static_cast<std::size_t>(n));
  return out;
}

Bytes hdf5_lz4_decode(const Bytes& in, const nlohmann::json&, std::size_t hint) {
  if (in.size() < 12) throw Error(ErrorKind::Source, "HDF5 lz4 buffer too short");
  const uint64_t total = read_be(in.data(), 8);
  const uint64_t block = read_be(in.data() + 8, 4);
  if (hint && total > hint + 1024)
    throw Error(ErrorKind::Source, "HDF5 lz4 header claims too many bytes");
  if (block == 0) throw Error(ErrorKind::Source, "HDF5 lz4 block size is 0");
  Bytes out(total);
  std::size_t pos = 12, done = 0;
  while (done < total) {
    if (pos + 4 > in.size()) throw Error(ErrorKind::Source, "HDF5 lz4 buffer truncated");
    const std::size_t csize = read_be(in.data() + pos, 4);
    pos += 4;
    const std::size_t want = std::min<uint64_t>(block, total - done);
    if (pos + csize > in.size()) throw Error(ErrorKind::Source, "HDF5 lz4 buffer truncated");
    if (csize == want) {
      std::memcpy(out.data() + done, in.data() + pos, want);
    } else {
      const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data() + pos),
                                        reinterpret_cast<char*>(out.data() + done),
                                        static_cast<int>(csize), static_cast<int>(want));
      if (n < 0 || static_cast<std::size_t>(n) != want)
        throw Error(ErrorKind::Source, "HDF5 lz4 block is corrupt");
    }
    pos += csize;
    done += want;
  }
  return out;
}

}  // namespace zp
