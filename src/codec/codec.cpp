#include "codec/codec.hpp"

#include "core/error.hpp"

namespace zp {

namespace {
// The one table of codecs. Order is display order only.
const Codec kCodecs[] = {
    {"zlib", zlib_decode, zlib_encode},
    {"gzip", gzip_decode, gzip_encode},
    {"shuffle", shuffle_decode, shuffle_encode},
    {"blosc", blosc_decode, blosc_encode},
    {"zstd", zstd_decode, zstd_encode},
    {"lz4", lz4_decode, lz4_encode},
    {"hdf5_lz4", hdf5_lz4_decode, nullptr},
    {"fletcher32", fletcher32_decode, fletcher32_encode},
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
  for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
    const Codec* codec = find_codec(it->id);
    if (!codec) throw Error::source(where, "unsupported codec '" + it->id + "'");
    // Only the last step must produce exactly decoded_size; earlier steps may differ (fletcher32).
    const std::size_t hint = std::next(it) == chain.rend() ? decoded_size : 0;
    try {
      in = codec->decode(in, it->config, hint ? hint : decoded_size);
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
