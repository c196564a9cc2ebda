#include "write/zarr_metadata.hpp"

#include <cmath>

#include "core/json_nonfinite.hpp"

namespace zp {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

// The fill value in the output dtype's JSON form (integers for integer arrays).
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

ojson group_attrs(const Plan& plan) {
  return plan.global_attrs.is_object() ? plan.global_attrs : ojson::object();
}

}  // namespace

json zarray_json(const ArrayPlan& a) {
  return {
      {"chunks", a.stored ? a.stored->chunks : a.chunks},
      {"compressor", a.compressor},
      {"dimension_separator", "."},
      {"dtype", a.object_codec.empty() ? a.conversion.out.str() : "|O"},
      {"fill_value", typed_fill(a)},
      {"filters", a.object_codec.empty() ? json(nullptr) : json::array({{{"id", a.object_codec}}})},
      {"order", "C"},
      {"shape", a.stored ? a.stored->shape : a.shape},
      {"zarr_format", 2}};
}

std::vector<CodecSpec> output_codecs(const ArrayPlan& a) {
  std::vector<CodecSpec> chain;
  if (!a.object_codec.empty())
    chain.push_back(CodecSpec{a.object_codec, json{{"id", a.object_codec}}});
  if (!a.compressor.is_null())
    chain.push_back(codec_spec_from_json(a.compressor, a.name + " compressor"));
  return chain;
}

ojson zattrs_json(const ArrayPlan& a) {
  ojson j = ojson::object();
  j["_ARRAY_DIMENSIONS"] = a.stored ? a.stored->dims : a.dims;
  for (const auto& [k, v] : a.attrs.items()) j[k] = v;
  return j;
}

void write_metadata(const Plan& plan, const FileStore& store) {
  store.put(".zgroup", json{{"zarr_format", 2}}.dump(4));
  store.put(".zattrs", dump_python_json(group_attrs(plan), 4));
  for (const auto& a : plan.arrays) {
    store.put(a.name + "/.zarray", zarray_json(a).dump(4));
    store.put(a.name + "/.zattrs", dump_python_json(zattrs_json(a), 4));
  }
}

void write_consolidated(const Plan& plan, const FileStore& store) {
  store.put(".zmetadata", dump_python_json(consolidated_json(plan), 4));
}

ojson consolidated_json(const Plan& plan) {
  ojson meta = ojson::object();
  meta[".zgroup"] = {{"zarr_format", 2}};
  meta[".zattrs"] = group_attrs(plan);
  for (const auto& a : plan.arrays) {
    meta[a.name + "/.zarray"] = ojson::parse(zarray_json(a).dump());
    meta[a.name + "/.zattrs"] = zattrs_json(a);
  }
  ojson doc = ojson::object();
  doc["metadata"] = meta;
  doc["zarr_consolidated_format"] = 1;
  return doc;
}

}  // namespace zp
