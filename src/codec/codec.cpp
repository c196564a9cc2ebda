#include "codec/codec.hpp"

#include <cstring>

#include "core/error.hpp"

namespace zp {

// grib_codec.cpp (declared here, not in codec.hpp, which nothing else needs it from).
bool grib_decode_into(const Bytes&, const nlohmann::json&, unsigned char*, std::size_t);

namespace {
using K = CodecKind;
using json = nlohmann::json;

// v3 configurations name every parameter (readers such as zarrita need them): our encoders'
// defaults filled in.
json level_to_v3(const json& c, int) {
  return {{"level", c.value("level", 1)}};
}
json zstd_to_v3(const json& c, int) {
  return {{"level", c.value("level", 1)}, {"checksum", c.value("checksum", false)}};
}
json lz4_to_v3(const json& c, int) {
  return {{"acceleration", c.value("acceleration", 1)}};
}
json shuffle_to_v3(const json& c, int itemsize) {
  return {{"elementsize", c.value("elementsize", itemsize)}};
}
// The one table of codecs. Order is display order only.
const Codec kCodecs[] = {
    {"zlib", K::BytesToBytes, zlib_decode, zlib_encode, nullptr, "numcodecs.zlib", level_to_v3,
     nullptr, zlib_decode_into},
    {"gzip", K::BytesToBytes, gzip_decode, gzip_encode, nullptr, "gzip", level_to_v3, nullptr,
     gzip_decode_into},
    {"shuffle", K::BytesToBytes, shuffle_decode, shuffle_encode, nullptr, "numcodecs.shuffle",
     shuffle_to_v3, nullptr, shuffle_decode_into},
    {"blosc", K::BytesToBytes, blosc_decode, blosc_encode, nullptr, "blosc", blosc_to_v3,
     blosc_from_v3, blosc_decode_into},
    {"zstd", K::BytesToBytes, zstd_decode, zstd_encode, nullptr, "zstd", zstd_to_v3, nullptr},
    {"lz4", K::BytesToBytes, lz4_decode, lz4_encode, nullptr, "numcodecs.lz4", lz4_to_v3, nullptr},
    {"hdf5_lz4", K::BytesToBytes, hdf5_lz4_decode, nullptr, nullptr, nullptr, nullptr, nullptr},
    {"fletcher32", K::BytesToBytes, fletcher32_decode, fletcher32_encode, nullptr, nullptr, nullptr,
     nullptr},
    {"crc32c", K::BytesToBytes, crc32c_decode, crc32c_encode, nullptr, "crc32c", nullptr, nullptr},
    {"bz2", K::BytesToBytes, bz2_decode, nullptr, nullptr, "numcodecs.bz2", nullptr, nullptr},
    {"lzma", K::BytesToBytes, lzma_decode, nullptr, nullptr, "numcodecs.lzma", nullptr, nullptr},
    {"szip", K::BytesToBytes, szip_decode, nullptr, nullptr, nullptr, nullptr, nullptr},
    {"delta", K::ArrayToArray, delta_decode, nullptr, dtype_filter_encoded_size, nullptr, nullptr,
     nullptr},
    {"fixedscaleoffset", K::ArrayToArray, fixedscaleoffset_decode, nullptr,
     dtype_filter_encoded_size, nullptr, nullptr, nullptr},
    {"quantize", K::ArrayToArray, quantize_decode, nullptr, dtype_filter_encoded_size, nullptr,
     nullptr, nullptr},
    {"astype", K::ArrayToArray, astype_decode, nullptr, dtype_filter_encoded_size, nullptr, nullptr,
     nullptr},
    {"packbits", K::ArrayToArray, packbits_decode, packbits_encode, packbits_encoded_size, nullptr,
     nullptr, nullptr},
    {"order_f", K::ArrayToArray, order_f_decode, order_f_encode, nullptr, nullptr, nullptr,
     nullptr},
    {"bytes", K::ArrayToBytes, identity_decode, identity_encode, nullptr, "bytes", nullptr,
     nullptr},
    {"vlen-utf8", K::ArrayToBytes, vlen_decode, vlen_encode, nullptr, "vlen-utf8", nullptr,
     nullptr},
    {"vlen-bytes", K::ArrayToBytes, vlen_decode, vlen_encode, nullptr, "vlen-bytes", nullptr,
     nullptr},
    {"grib", K::ArrayToBytes, grib_decode, nullptr, nullptr, nullptr, nullptr, nullptr,
     grib_decode_into},
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

CodecKind codec_kind(const std::string& id) {
  const Codec* c = find_codec(id);
  return c ? c->kind : CodecKind::BytesToBytes;
}

nlohmann::json codec_to_v3(const CodecSpec& spec, int itemsize, const std::string& where) {
  const Codec* c = find_codec(spec.id);
  if (!c || !c->v3_name)
    throw Error::config(where, "codec '" + spec.id + "' has no Zarr v3 form (use zarr_format: 2)");
  nlohmann::json conf;
  if (c->to_v3) {
    conf = c->to_v3(spec.config, itemsize);
  } else {
    conf = spec.config.is_object() ? spec.config : nlohmann::json::object();
    conf.erase("id");
  }
  nlohmann::json out = {{"name", c->v3_name}};
  if (!conf.empty()) out["configuration"] = conf;
  return out;
}

CodecSpec codec_from_v3(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string())
    throw Error::source(where,
                        "codec must be an object with a 'name', got " + j.dump().substr(0, 200));
  const std::string name = j["name"].get<std::string>();
  const nlohmann::json conf = j.value("configuration", nlohmann::json::object());
  if (!conf.is_object())
    throw Error::source(where, "codec '" + name + "': configuration must be an object");
  for (const auto& c : kCodecs) {
    // Accept the standard name and the numcodecs.* and bare spellings other writers use.
    const std::string v3 = c.v3_name ? c.v3_name : "";
    if (v3.empty() || (name != v3 && name != "numcodecs." + std::string(c.id) && name != c.id))
      continue;
    nlohmann::json config = c.from_v3 ? c.from_v3(conf) : conf;
    config["id"] = c.id;
    return CodecSpec{c.id, config};
  }
  throw Error::source(where, "unsupported Zarr v3 codec '" + name + "'");
}

namespace {

// The size each step decodes to, known up to the first codec of unknown output (a compressor):
// dtype filters (Delta, AsType, ...) store other item sizes than they decode to.
std::vector<std::size_t> step_sizes(const std::vector<CodecSpec>& chain, std::size_t decoded_size,
                                    const std::function<std::string()>& where) {
  std::vector<std::size_t> expected(chain.size(), decoded_size);
  std::size_t size = decoded_size;
  for (std::size_t i = 0; i < chain.size(); ++i) {
    expected[i] = size;
    const Codec* codec = find_codec(chain[i].id);
    if (codec && codec->encoded_size) {
      try {
        size = codec->encoded_size(chain[i].config, size);
      } catch (const Error& e) {
        throw Error::source(where(), std::string("codec '") + chain[i].id + "': " + e.what());
      }
    }
  }
  return expected;
}

// Decodes steps `from` - 1 down to `last` (decode order) of `in`.
Bytes decode_steps(const std::vector<CodecSpec>& chain, Bytes in, std::size_t from,
                   std::size_t last, const std::vector<std::size_t>& expected,
                   const std::function<std::string()>& where) {
  for (std::size_t k = from; k-- > last;) {
    const CodecSpec& spec = chain[k];
    const Codec* codec = find_codec(spec.id);
    if (!codec) throw Error::source(where(), "unsupported codec '" + spec.id + "'");
    try {
      in = codec->decode(in, spec.config, expected[k]);
    } catch (const Error& e) {
      throw Error::source(where(), std::string("codec '") + spec.id + "' failed: " + e.what());
    }
  }
  return in;
}

void check_size(const Bytes& in, std::size_t decoded_size,
                const std::function<std::string()>& where) {
  if (in.size() != decoded_size)
    throw Error::source(where(), "decoded chunk has " + std::to_string(in.size()) +
                                     " bytes, expected " + std::to_string(decoded_size));
}

}  // namespace

bool chain_may_abort(const std::vector<CodecSpec>& chain) {
  for (const auto& spec : chain)
    if (spec.id == "grib") return true;
  return false;
}

Bytes decode_chain(const std::vector<CodecSpec>& chain, Bytes in, std::size_t decoded_size,
                   const std::function<std::string()>& where) {
  in = decode_steps(chain, std::move(in), chain.size(), 0, step_sizes(chain, decoded_size, where),
                    where);
  check_size(in, decoded_size, where);
  return in;
}

Bytes decode_chain(const std::vector<CodecSpec>& chain, Bytes in, std::size_t decoded_size,
                   const std::string& where) {
  return decode_chain(chain, std::move(in), decoded_size, [&] { return where; });
}

void decode_chain_into(const std::vector<CodecSpec>& chain, Bytes in, unsigned char* out,
                       std::size_t decoded_size, const std::function<std::string()>& where) {
  if (!chain.empty()) {
    const std::vector<std::size_t> expected = step_sizes(chain, decoded_size, where);
    in = decode_steps(chain, std::move(in), chain.size(), 1, expected, where);
    const CodecSpec& spec = chain[0];
    const Codec* codec = find_codec(spec.id);
    if (codec && codec->decode_into) {
      try {
        if (codec->decode_into(in, spec.config, out, decoded_size)) return;
      } catch (const Error& e) {
        throw Error::source(where(), std::string("codec '") + spec.id + "' failed: " + e.what());
      }
    }
    // No direct form, or another size than expected: decode as usual (the size error says how
    // many bytes there were).
    in = decode_steps(chain, std::move(in), 1, 0, expected, where);
  }
  check_size(in, decoded_size, where);
  if (decoded_size) std::memcpy(out, in.data(), decoded_size);
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
