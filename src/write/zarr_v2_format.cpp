// Zarr v2 caches: .zgroup, .zattrs, each array's .zarray and .zattrs (with xarray's
// _ARRAY_DIMENSIONS), and the consolidated .zmetadata that xarray.open_zarr reads first.
#include <cmath>

#include "core/error.hpp"
#include "core/json_nonfinite.hpp"
#include "write/output_format.hpp"

namespace zp {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

ojson group_attrs(const Plan& plan) {
  return plan.global_attrs.is_object() ? plan.global_attrs : ojson::object();
}

// filters: array→array and the |O array's object codec; compressor: the last bytes→bytes codec
// (bytes→bytes codecs before it are filters too, as numcodecs allows).
json zarray_json(const ArrayPlan& a) {
  json filters = json::array();
  json compressor = nullptr;
  for (std::size_t i = 0; i < a.codecs.size(); ++i) {
    const bool last = i + 1 == a.codecs.size();
    if (last && codec_kind(a.codecs[i].id) == CodecKind::BytesToBytes)
      compressor = a.codecs[i].config;
    else
      filters.push_back(a.codecs[i].config);
  }
  return {{"chunks", a.stored ? a.stored->chunks : a.chunks},
          {"compressor", compressor},
          {"dimension_separator", "."},
          {"dtype", a.object_codec().empty() ? a.conversion.out.str() : "|O"},
          {"fill_value", typed_fill(a)},
          {"filters", filters.empty() ? json(nullptr) : filters},
          {"order", "C"},
          {"shape", a.stored ? a.stored->shape : a.shape},
          {"zarr_format", 2}};
}

ojson zattrs_json(const ArrayPlan& a) {
  ojson j = ojson::object();
  j["_ARRAY_DIMENSIONS"] = a.stored ? a.stored->dims : a.dims;
  for (const auto& [k, v] : a.attrs.items()) j[k] = v;
  return j;
}

class ZarrV2 : public OutputFormat {
 public:
  int zarr_format() const override { return 2; }

  MetadataDocuments metadata(const Plan& plan) const override {
    MetadataDocuments out;
    out.emplace_back(".zgroup", ojson{{"zarr_format", 2}});
    out.emplace_back(".zattrs", group_attrs(plan));
    for (const auto& a : plan.arrays) {
      out.emplace_back(a.name + "/.zarray", ojson::parse(zarray_json(a).dump()));
      out.emplace_back(a.name + "/.zattrs", zattrs_json(a));
    }
    return out;
  }

  std::pair<std::string, ojson> consolidated(const Plan& plan) const override {
    ojson meta = ojson::object();
    for (auto& [key, doc] : metadata(plan)) meta[key] = std::move(doc);
    ojson doc = ojson::object();
    doc["metadata"] = meta;
    doc["zarr_consolidated_format"] = 1;
    return {".zmetadata", doc};
  }

  std::string chunk_key(const std::string& array, const std::vector<int64_t>& chunk) const override {
    std::string key = array + "/";
    for (std::size_t d = 0; d < chunk.size(); ++d) key += (d ? "." : "") + std::to_string(chunk[d]);
    if (chunk.empty()) key += "0";  // Zarr v2 names a 0-d array's one chunk "0"
    return key;
  }

  std::optional<Bytes> encode(const ArrayPlan& a, Bytes chunk) const override {
    return encode_chain(a.codecs, std::move(chunk), a.conversion.out.size);
  }

  Bytes decode(const ArrayPlan& a, const std::optional<Bytes>& stored,
               const std::string& where) const override {
    if (!stored) throw Error::store(where, "missing");
    return decode_chain(a.codecs, *stored, a.chunk_bytes(), where);
  }
};

}  // namespace

json typed_fill(const ArrayPlan& a) {
  const json& f = a.fill_value;
  if (f.is_null()) return nullptr;
  const DType t = a.conversion.out;
  if (t.kind == 'f' || !t.numeric()) return f;  // text and bool: Zarr's form, as the source had it
  if (f.is_number_float()) {
    const double v = f.get<double>();
    if (!std::isfinite(v) || v < -9.2e18 || v > 9.2e18) return nullptr;
    return t.kind == 'u' ? json(static_cast<uint64_t>(v)) : json(static_cast<int64_t>(v));
  }
  return f.is_number() ? f : json(nullptr);
}

Bytes fill_chunk(const ArrayPlan& a) {
  Bytes out(a.chunk_bytes());
  const json fill = a.fill_value.is_null() ? json(0) : a.fill_value;
  fill_elements(out.data(), out.size() / static_cast<std::size_t>(a.conversion.out.size),
                a.conversion.out, fill);
  return out;
}

const OutputFormat& zarr_v2_format() {
  static const ZarrV2 format;
  return format;
}

}  // namespace zp
