// Blosc through c-blosc's context API, single-threaded: our pool owns the parallelism.
#include <blosc.h>

#include "codec/codec.hpp"
#include "core/error.hpp"
#include "core/json_int.hpp"

namespace zp {

Bytes blosc_decode(const Bytes& in, const nlohmann::json&, std::size_t size_hint) {
  std::size_t nbytes = 0, cbytes = 0, blocksize = 0;
  if (in.size() < BLOSC_MIN_HEADER_LENGTH) throw Error(ErrorKind::Source, "blosc buffer too short");
  blosc_cbuffer_sizes(in.data(), &nbytes, &cbytes, &blocksize);
  if (cbytes != in.size())
    throw Error(ErrorKind::Source, "blosc header does not match buffer size");
  if (size_hint && nbytes > size_hint + 1024)
    throw Error(ErrorKind::Source, "blosc header claims too many bytes");
  Bytes out(nbytes);
  if (nbytes == 0) return out;
  const int n = blosc_decompress_ctx(in.data(), out.data(), out.size(), 1);
  if (n < 0 || static_cast<std::size_t>(n) != nbytes)
    throw Error(ErrorKind::Source, "blosc stream is corrupt");
  return out;
}

bool blosc_decode_into(const Bytes& in, const nlohmann::json&, unsigned char* out,
                       std::size_t size) {
  std::size_t nbytes = 0, cbytes = 0, blocksize = 0;
  if (in.size() < BLOSC_MIN_HEADER_LENGTH) throw Error(ErrorKind::Source, "blosc buffer too short");
  blosc_cbuffer_sizes(in.data(), &nbytes, &cbytes, &blocksize);
  if (cbytes != in.size())
    throw Error(ErrorKind::Source, "blosc header does not match buffer size");
  if (nbytes != size) return false;
  if (nbytes == 0) return true;
  const int n = blosc_decompress_ctx(in.data(), out, size, 1);
  if (n < 0 || static_cast<std::size_t>(n) != nbytes)
    throw Error(ErrorKind::Source, "blosc stream is corrupt");
  return true;
}

Bytes blosc_encode(const Bytes& in, const nlohmann::json& config, int itemsize) {
  const std::string cname = config.contains("cname") && config["cname"].is_string()
                                ? config["cname"].get<std::string>()
                                : "lz4";
  const int clevel = static_cast<int>(json_int_or(config, "clevel", 5, "blosc", 0, 9));
  int shuffle = static_cast<int>(json_int_or(config, "shuffle", 1, "blosc", -1, 2));
  // numcodecs AUTOSHUFFLE (-1): bit shuffle for 1-byte items, byte shuffle otherwise.
  if (shuffle == -1) shuffle = itemsize == 1 ? BLOSC_BITSHUFFLE : BLOSC_SHUFFLE;
  const auto blocksize =
      static_cast<std::size_t>(json_int_or(config, "blocksize", 0, "blosc", 0, INT32_MAX));
  Bytes out(in.size() + BLOSC_MAX_OVERHEAD);
  const int n = blosc_compress_ctx(clevel, shuffle, static_cast<std::size_t>(itemsize), in.size(),
                                   in.data(), out.data(), out.size(), cname.c_str(), blocksize, 1);
  if (n <= 0) throw Error::internal("blosc compression failed (cname '" + cname + "')");
  out.resize(static_cast<std::size_t>(n));
  return out;
}

// Zarr v3 spells shuffle as a word and names the item size.
nlohmann::json blosc_to_v3(const nlohmann::json& config, int itemsize) {
  int shuffle = static_cast<int>(json_int_or(config, "shuffle", 1, "blosc", -1, 2));
  if (shuffle == -1) shuffle = itemsize == 1 ? BLOSC_BITSHUFFLE : BLOSC_SHUFFLE;
  static const char* const words[] = {"noshuffle", "shuffle", "bitshuffle"};
  return {{"cname", config.value("cname", "lz4")},
          {"clevel", json_int_or(config, "clevel", 5, "blosc", 0, 9)},
          {"shuffle", words[shuffle]},
          {"typesize", itemsize},
          {"blocksize", json_int_or(config, "blocksize", 0, "blosc", 0, INT32_MAX)}};
}

nlohmann::json blosc_from_v3(const nlohmann::json& c) {
  nlohmann::json out = c;
  if (c.contains("shuffle") && c["shuffle"].is_string()) {
    const std::string s = c["shuffle"].get<std::string>();
    out["shuffle"] = s == "noshuffle" ? 0 : s == "bitshuffle" ? 2 : 1;
  }
  out.erase("typesize");
  return out;
}

}  // namespace zp
