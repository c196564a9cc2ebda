// Codecs: byte-to-byte transforms named as numcodecs names them ("zlib", "shuffle", "blosc", ...).
// One explicit table maps a name to its functions; adding a codec means one file and one table row.
// A CodecSpec is the JSON a Zarr v2 .zarray holds for it ({"id": "zlib", "level": 4}). A chain is
// kept in encode order (Zarr v2 filters then compressor; HDF5 pipeline order) and decoded in
// reverse. All functions are pure and thread-safe; codec libraries run single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/bytes.hpp"

namespace zp {

struct CodecSpec {
  std::string id;
  nlohmann::json config;  // the full numcodecs-style object, including "id"
};

// What a codec turns into what, as Zarr v3 types its codec chains.
enum class CodecKind { ArrayToArray, ArrayToBytes, BytesToBytes };

struct Codec {
  const char* id;
  CodecKind kind;
  // `size_hint` is the expected decoded size when known (0 when not).
  Bytes (*decode)(const Bytes& in, const nlohmann::json& config, std::size_t size_hint);
  // Null for decode-only codecs. `itemsize` is the array element size (for shuffles).
  Bytes (*encode)(const Bytes& in, const nlohmann::json& config, int itemsize);
  // Filters that store another dtype than they decode to: the bytes stored for `decoded` bytes.
  // Null when the size is the same (shuffle) or not known in advance (compressors).
  std::size_t (*encoded_size)(const nlohmann::json& config, std::size_t decoded);
  // Zarr v3: its name (nullptr: no v3 form), and the translation of the configuration both ways
  // (nullptr: the same keys, without "id").
  const char* v3_name;
  nlohmann::json (*to_v3)(const nlohmann::json& config, int itemsize);
  nlohmann::json (*from_v3)(const nlohmann::json& configuration);
  // Optional: decodes into `out`, which holds exactly `size` bytes (the chunk's place in an output
  // buffer). False, with nothing promised about `out`, when the data is well formed but decodes
  // to another size; corrupt data throws as decode does.
  bool (*decode_into)(const Bytes& in, const nlohmann::json& config, unsigned char* out,
                      std::size_t size) = nullptr;
};

// Zarr v3 codec JSON ({"name", "configuration"}) of a spec, and back. Error(Config) naming
// `where` for a codec without a v3 form / Error(Source) for an unknown v3 codec.
nlohmann::json codec_to_v3(const CodecSpec& spec, int itemsize, const std::string& where);
CodecSpec codec_from_v3(const nlohmann::json& j, const std::string& where);
CodecKind codec_kind(const std::string& id);

// The codec registered under `id`, or nullptr.
const Codec* find_codec(const std::string& id);
std::vector<std::string> codec_names();

// Parses {"id": ...}; throws Error(Config) naming `where` for unknown codecs.
CodecSpec codec_spec_from_json(const nlohmann::json& j, const std::string& where);

// Whether a codec of `chain` runs a library that aborts the process on some malformed input
// (ecCodes asserts): its callers leave a crash note (core/crash_note.hpp).
bool chain_may_abort(const std::vector<CodecSpec>& chain);

// Decodes `in` through `chain` (applied in reverse). `decoded_size` is the final size expected;
// a mismatch is an error naming `where`.
Bytes decode_chain(const std::vector<CodecSpec>& chain, Bytes in, std::size_t decoded_size,
                   const std::string& where);
// `where` called only for an error message (a chunk's location costs a string to build).
Bytes decode_chain(const std::vector<CodecSpec>& chain, Bytes in, std::size_t decoded_size,
                   const std::function<std::string()>& where);
// The same into `out` (exactly `decoded_size` bytes): the last step writes there itself when its
// codec can. `where` is called only for an error message.
void decode_chain_into(const std::vector<CodecSpec>& chain, Bytes in, unsigned char* out,
                       std::size_t decoded_size, const std::function<std::string()>& where);
Bytes encode_chain(const std::vector<CodecSpec>& chain, Bytes in, int itemsize);

// Codec functions, one file each.
Bytes zlib_decode(const Bytes&, const nlohmann::json&, std::size_t);
bool zlib_decode_into(const Bytes&, const nlohmann::json&, unsigned char*, std::size_t);
bool gzip_decode_into(const Bytes&, const nlohmann::json&, unsigned char*, std::size_t);
bool shuffle_decode_into(const Bytes&, const nlohmann::json&, unsigned char*, std::size_t);
bool blosc_decode_into(const Bytes&, const nlohmann::json&, unsigned char*, std::size_t);
Bytes zlib_encode(const Bytes&, const nlohmann::json&, int);
Bytes gzip_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes gzip_encode(const Bytes&, const nlohmann::json&, int);
Bytes shuffle_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes shuffle_encode(const Bytes&, const nlohmann::json&, int);
// The unshuffle of `size` bytes of `es`-byte elements into `out` (trailing bytes copied).
void unshuffle_bytes(const unsigned char* in, unsigned char* out, std::size_t size, std::size_t es);
Bytes blosc_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes blosc_encode(const Bytes&, const nlohmann::json&, int);
Bytes zstd_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes zstd_encode(const Bytes&, const nlohmann::json&, int);
Bytes lz4_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes lz4_encode(const Bytes&, const nlohmann::json&, int);
Bytes hdf5_lz4_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes fletcher32_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes fletcher32_encode(const Bytes&, const nlohmann::json&, int);
uint32_t fletcher32_checksum(const unsigned char* data, std::size_t n);
Bytes delta_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes fixedscaleoffset_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes quantize_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes astype_decode(const Bytes&, const nlohmann::json&, std::size_t);
std::size_t dtype_filter_encoded_size(const nlohmann::json&, std::size_t);
Bytes packbits_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes packbits_encode(const Bytes&, const nlohmann::json&, int);
std::size_t packbits_encoded_size(const nlohmann::json&, std::size_t);
Bytes order_f_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes order_f_encode(const Bytes&, const nlohmann::json&, int);
Bytes vlen_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes vlen_encode(const Bytes&, const nlohmann::json&, int);
std::vector<std::string> vlen_items(const Bytes&);  // the items of a VLenUTF8/VLenBytes chunk
Bytes bz2_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes crc32c_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes crc32c_encode(const Bytes&, const nlohmann::json&, int);
uint32_t crc32c(const unsigned char* data, std::size_t n);
Bytes identity_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes identity_encode(const Bytes&, const nlohmann::json&, int);
nlohmann::json blosc_to_v3(const nlohmann::json&, int);
nlohmann::json blosc_from_v3(const nlohmann::json&);
Bytes lzma_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes szip_decode(const Bytes&, const nlohmann::json&, std::size_t);
Bytes grib_decode(const Bytes&, const nlohmann::json&, std::size_t);  // a GRIB message: float32

}  // namespace zp
