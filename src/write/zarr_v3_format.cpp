// Zarr v3 caches: each array's zarr.json (data_type, regular chunk grid, default chunk keys
// "c/0/0", fill_value, the codec chain, attributes, dimension_names) and the root group's
// zarr.json, rewritten at the end with the consolidated metadata inline as zarr-python 3 writes
// it. xarray's v3 conventions: dimensions in dimension_names, _FillValue as an attribute (floats
// as base64 of a little-endian double), the array's fill_value the value of never-written chunks.
#include <cmath>
#include <cstring>

#include "core/error.hpp"
#include "core/text_codec.hpp"
#include "write/output_format.hpp"
#include "write/shard_codec.hpp"

namespace zp {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

std::string data_type(const DType& t, const std::string& array) {
  const int bits = 8 * t.size;
  switch (t.kind) {
    case 'b':
      return "bool";
    case 'i':
      return "int" + std::to_string(bits);
    case 'u':
      return "uint" + std::to_string(bits);
    case 'f':
      return "float" + std::to_string(bits);
    case 'c':
      return "complex" + std::to_string(bits);
    default:
      throw Error::config("zarr_format", "array '" + array + "' has dtype " + t.str() +
                                             ", which has no Zarr v3 data type here");
  }
}

// The fill value v3 needs (never null): the plan's, else 0 / false.
json v3_fill(const ArrayPlan& a) {
  const DType t = a.conversion.out;
  if (t.kind == 'b') return a.fill_value.is_boolean() ? a.fill_value : json(false);
  if (t.kind == 'f') {
    const json& f = a.fill_value;
    if (f.is_string()) return f;  // "NaN", "Infinity", "-Infinity": v3 spells them so too
    if (f.is_number()) {
      const double v = f.get<double>();
      if (std::isnan(v)) return "NaN";
      if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
      return f;
    }
    return 0.0;
  }
  const json f = typed_fill(a);
  return f.is_null() ? json(0) : f;
}

// xarray's FillValueCoder.encode: floats as base64 of "<d", integers as integers, bools as bools.
json fill_attribute(const ArrayPlan& a) {
  const DType t = a.conversion.out;
  if (t.kind != 'f') return typed_fill(a);
  double v = 0;
  const json& f = a.fill_value;
  if (f.is_number()) v = f.get<double>();
  else if (f == "NaN") v = std::nan("");
  else if (f == "Infinity") v = INFINITY;
  else if (f == "-Infinity") v = -INFINITY;
  Bytes b(8);
  std::memcpy(b.data(), &v, 8);  // little-endian machines only (as the rest of the writer)
  return encode_base64(b);
}

json bytes_codec(const ArrayPlan& a) {
  return {{"name", "bytes"},
          {"configuration", {{"endian", a.conversion.out.big_endian ? "big" : "little"}}}};
}

// The array's codecs in v3 form: array→array filters, one array→bytes codec (the plain bytes
// unless the chain names one), bytes→bytes codecs.
json chunk_codecs(const ArrayPlan& a) {
  json out = json::array();
  const int item = a.conversion.out.size;
  bool serializer = false;
  for (const auto& c : a.codecs) {
    const CodecKind k = codec_kind(c.id);
    if (k != CodecKind::BytesToBytes && !serializer && k == CodecKind::ArrayToBytes) serializer = true;
    if (k == CodecKind::BytesToBytes && !serializer) {
      out.push_back(bytes_codec(a));
      serializer = true;
    }
    out.push_back(codec_to_v3(c, item, "compressor (array " + a.name + ")"));
  }
  if (!serializer) out.push_back(bytes_codec(a));
  return out;
}

ojson array_json(const ArrayPlan& a) {
  ojson j = ojson::object();
  j["zarr_format"] = 3;
  j["node_type"] = "array";
  j["shape"] = a.stored ? a.stored->shape : a.shape;
  j["data_type"] = data_type(a.conversion.out, a.name);
  j["chunk_grid"] = {{"name", "regular"},
                     {"configuration", {{"chunk_shape", a.stored ? a.stored->chunks : a.chunks}}}};
  j["chunk_key_encoding"] = {{"name", "default"}, {"configuration", {{"separator", "/"}}}};
  j["fill_value"] = ojson::parse(v3_fill(a).dump());
  const json inner = chunk_codecs(a);
  if (a.inner_chunks.empty()) {
    j["codecs"] = ojson::parse(inner.dump());
  } else {
    const json sharding = {
        {"name", "sharding_indexed"},
        {"configuration",
         {{"chunk_shape", a.inner_chunks},
          {"codecs", inner},
          {"index_codecs",
           json::array({{{"name", "bytes"}, {"configuration", {{"endian", "little"}}}},
                        {{"name", "crc32c"}}})},
          {"index_location", "end"}}}};
    j["codecs"] = ojson::parse(json::array({sharding}).dump());
  }
  ojson attrs = ojson::object();
  for (const auto& [k, v] : a.attrs.items()) attrs[k] = v;
  if (!a.fill_value.is_null() && !attrs.contains("_FillValue"))
    attrs["_FillValue"] = ojson::parse(fill_attribute(a).dump());
  j["attributes"] = attrs;
  j["dimension_names"] = a.stored ? a.stored->dims : a.dims;
  j["storage_transformers"] = ojson::array();
  return j;
}

ojson group_json(const Plan& plan) {
  ojson j = ojson::object();
  j["zarr_format"] = 3;
  j["node_type"] = "group";
  j["attributes"] = plan.global_attrs.is_object() ? plan.global_attrs : ojson::object();
  return j;
}

class ZarrV3 : public OutputFormat {
 public:
  int zarr_format() const override { return 3; }

  MetadataDocuments metadata(const Plan& plan) const override {
    MetadataDocuments out;
    out.emplace_back("zarr.json", group_json(plan));
    for (const auto& a : plan.arrays) out.emplace_back(a.name + "/zarr.json", array_json(a));
    return out;
  }

  std::pair<std::string, ojson> consolidated(const Plan& plan) const override {
    ojson root = group_json(plan);
    ojson meta = ojson::object();
    for (const auto& a : plan.arrays) meta[a.name] = array_json(a);
    root["consolidated_metadata"] = {{"kind", "inline"}, {"must_understand", false}, {"metadata", meta}};
    return {"zarr.json", root};
  }

  std::string chunk_key(const std::string& array, const std::vector<int64_t>& chunk) const override {
    std::string key = array + "/c";
    for (auto c : chunk) key += "/" + std::to_string(c);
    return key;
  }

  std::optional<Bytes> encode(const ArrayPlan& a, Bytes chunk) const override {
    if (!a.inner_chunks.empty()) return encode_shard(a, chunk);
    return encode_chain(a.codecs, std::move(chunk), a.conversion.out.size);
  }

  Bytes decode(const ArrayPlan& a, const std::optional<Bytes>& stored,
               const std::string& where) const override {
    if (!a.inner_chunks.empty()) return stored ? decode_shard(a, *stored, where) : fill_chunk(a);
    if (!stored) throw Error::store(where, "missing");
    return decode_chain(a.codecs, *stored, a.chunk_bytes(), where);
  }
};

}  // namespace

const OutputFormat& zarr_v3_format() {
  static const ZarrV3 format;
  return format;
}

}  // namespace zp
