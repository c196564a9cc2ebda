#include "codec/codec.hpp"

#include "core/error.hpp"

namespace zp {

namespace {
// The one table of codecs. Order is display order only.
const Codec kCodecs[] = {
    {"zlib", zlib_decode, zlib_encode, nullptr},
    {"gzip", gzip_decode, gzip_encode, nullptr},
    {"shuffle", shuffle_decode, shuffle_encode, nullptr},
    {"blosc", blosc_decode, blosc_encode, nullptr},
    {"zstd", zstd_decode, zstd_encode, nullptr},
    {"lz4", lz4_decode, lz4_encode, nullptr},
    {"hdf5_lz4", hdf5_lz4_decode, nullptr, nullptr},
    {"fletcher32", fletcher32_decode, fletcher32_encode, nullptr},
    {"bz2", bz2_decode, nullptr, nullptr},
    {"lzma", lzma_decode, nullptr, nullptr},
    {"delta", delta_decode, nullptr, dtype_filter_encoded_size},
    {"fixedscaleoffset", fixedscaleoffset_decode, nullptr, dtype_filter_encoded_size},
    {"quantize", quantize_decode, nullptr, dtype_filter_encoded_size},
    {"astype", astype_decode, nullptr, dtype_filter_encoded_size},
    {"packbits", packbits_decode, packbits_encode, packbits_encoded_size},
    {"order_f", order_f_decode, order_f_encode, nullptr},
    {"vlen-utf8", vlen_decode, vlen_encode, nullptr},
    {"vlen-bytes", vlen_decode, vlen_encode, nullptr},
};
}  // namespace

const Codec* find_codec(const std::string& id) {
  for (const auto& c : kCodecs)
    if (id == c.id) return &c;
  return nullptr;
}

std::vector<std::string> codec_names() {
  std::vector<std::string> names;
  for (const auto& c : kCodecs) names.emplace_back(c.id);
  return names;
}

CodecSpec codec_spec_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("id") || !j["id"].is_string())
    throw Error::config(where, "codec must be an object with an 'id', got " + j.dump());
  CodecSpec spec{j["id"].get<std::string>(), j};
  if (!find_codec(spec.id)) {
    std::string known;
    for (const auto& n : codec_names()) known += (known.empty() ? "" : ", ") + n;
    throw Error::config(where, "unsupported codec '" + spec.id + "' (supported: " + known + ")");
  }
  return spec;
}

Bytes decode_chain(const std::vector<CodecSpec>& chain, Bytes in, std::size_t decoded_size,
                   const std::string& where) {
  // The size each step decodes to, known up to the first codec of unknown output (a compressor):
  // dtype filters (Delta, AsType, ...) store other item sizes than they decode to.
  std::vector<std::size_t> expected(chain.size(), decoded_size);
  std::size_t size = decoded_size;
  for (std::size_t i = 0; i < chain.size(); ++i) {
    expected[i] = size;
    const Codec* codec = find_codec(chain[i].id);
    if (codec && codec->encoded_size) {
      try {
        size = codec->encoded_size(chain[i].config, size);
      } catch (const Error& e) {
        throw Error::source(where, std::string("codec '") + chain[i].id + "': " + e.what());
      }
    }
  }
  for (std::size_t k = chain.size(); k-- > 0;) {
    const auto it = chain.begin() + static_cast<std::ptrdiff_t>(k);
    const Codec* codec = find_codec(it->id);
    if (!codec) throw Error::source(where, "unsupported codec '" + it->id + "'");
    try {
      in = codec->decode(in, it->config, expected[k]);
    } catch (const Error& e) {
      throw Error::source(where, std::string("codec '") + it->id + "' failed: " + e.what());
    }
  }
  if (in.size() != decoded_size)
    throw Error::source(where, "decoded chunk has " + std::to_string(in.size()) +
                                   " bytes, expected " + std::to_string(decoded_size));
  return in;
}

Bytes encode_chain(const std::vector<CodecSpec>& chain, Bytes in, int itemsize) {
  for (const auto& spec : chain) {
    const Codec* codec = find_codec(spec.id);
    if (!codec || !codec->encode) throw Error::internal("codec '" + spec.id + "' cannot encode");
    in = codec->encode(in, spec.config, itemsize);
  }
  return in;
}

}  // namespace zp
