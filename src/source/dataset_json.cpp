#include "source/dataset_json.hpp"

#include "core/error.hpp"
#include "core/json_nonfinite.hpp"
#include "core/text_codec.hpp"

namespace zp {

using json = nlohmann::json;

json chunk_ref_json(int64_t index, const ChunkRef& r) {
  switch (r.kind) {
    case ChunkRef::Kind::Range:
      return {index, "range", r.file, r.offset, r.length, r.filter_mask};
    case ChunkRef::Kind::Inline:
      return {index, "inline", encode_base64(*r.data)};
    default:
      return {index, "missing"};
  }
}

ChunkRef chunk_ref_from(const json& j, const std::string& where) {
  ChunkRef r;
  const std::string kind = j.at(1);
  if (kind == "range") {
    r.kind = ChunkRef::Kind::Range;
    r.file = j.at(2);
    r.offset = j.at(3);
    r.length = j.at(4);
    r.filter_mask = j.at(5);
  } else if (kind == "inline") {
    r.kind = ChunkRef::Kind::Inline;
    r.data = std::make_shared<Bytes>(decode_base64(j.at(2).get<std::string>(), where));
  }
  return r;
}

using ojson = nlohmann::ordered_json;

ojson variable_json(const Variable& v) {
  json codecs = json::array();
  for (const auto& c : v.codecs) codecs.push_back(c.config);
  json refs = json::array();
  for (std::size_t i = 0; i < v.chunks.size(); ++i)
    if (v.chunks[i].kind != ChunkRef::Kind::Missing)
      refs.push_back(chunk_ref_json(static_cast<int64_t>(i), v.chunks[i]));
  ojson o = ojson::object();
  o["name"] = v.name;
  o["dims"] = v.dims;
  o["shape"] = v.shape;
  o["dtype"] = v.dtype.str();
  o["attrs"] = v.attrs;
  o["fill_value"] = ojson::parse(v.fill_value.dump());
  o["missing_chunk_value"] = ojson::parse(v.missing_chunk_value.dump());
  o["codecs"] = ojson::parse(codecs.dump());
  o["chunk_shape"] = v.grid.chunk_shape;
  o["edges"] = v.grid.edges;
  o["chunks"] = ojson::parse(refs.dump());
  o["origin"] = v.origin;
  o["object_codec"] = v.object_codec;
  return o;
}

Variable variable_from(const ojson& j, const std::string& where) {
  Variable v;
  v.name = j.at("name");
  v.dims = j.at("dims").get<std::vector<std::string>>();
  v.shape = j.at("shape").get<std::vector<int64_t>>();
  v.dtype = DType::parse(j.at("dtype"));
  v.attrs = j.at("attrs");
  v.fill_value = json::parse(j.at("fill_value").dump());
  v.missing_chunk_value = json::parse(j.at("missing_chunk_value").dump());
  for (const auto& c : j.at("codecs"))
    v.codecs.push_back(codec_spec_from_json(json::parse(c.dump()), where));
  v.grid.chunk_shape = j.at("chunk_shape").get<std::vector<int64_t>>();
  v.grid.edges = j.at("edges").get<std::vector<std::vector<int64_t>>>();
  v.chunks.assign(static_cast<std::size_t>(v.grid.num_chunks()), ChunkRef{});
  for (const auto& r : j.at("chunks")) {
    const int64_t idx = r.at(0);
    if (idx < 0 || idx >= v.grid.num_chunks())
      throw Error::source(where, "chunk index out of range");
    v.chunks[static_cast<std::size_t>(idx)] = chunk_ref_from(json::parse(r.dump()), where);
  }
  v.origin = j.value("origin", "");
  v.object_codec = j.value("object_codec", "");
  return v;
}

ojson dataset_json(const Dataset& ds) {
  ojson dims = ojson::array(), vars = ojson::array(), unsupported = ojson::array();
  for (const auto& d : ds.dims) dims.push_back({d.name, d.size, d.unlimited});
  for (const auto& v : ds.variables) vars.push_back(variable_json(v));
  for (const auto& [name, what] : ds.unsupported) unsupported.push_back({name, what});
  ojson o = ojson::object();
  o["uri"] = ds.uri;
  o["engine"] = ds.engine;
  o["files"] = ds.files;
  o["dims"] = dims;
  o["variables"] = vars;
  o["attrs"] = ds.attrs;
  o["unsupported"] = unsupported;
  o["group"] = ds.group;
  o["groups"] = ds.groups;
  return o;
}

std::string dataset_text(const Dataset& ds) {
  return dump_python_json(dataset_json(ds));
}

Dataset dataset_from_text(const std::string& text, const std::string& where) {
  ojson j = ojson::parse(nonfinite_tokens_to_markers(text), nullptr, false);
  if (j.is_discarded()) throw Error::source(where, "not a dataset description");
  nonfinite_markers_to_numbers(j);
  return dataset_from(j, where);
}

Dataset dataset_from(const ojson& j, const std::string& where) {
  Dataset ds;
  ds.uri = j.at("uri");
  ds.engine = j.at("engine");
  ds.files = j.at("files").get<std::vector<std::string>>();
  for (const auto& d : j.at("dims")) ds.dims.push_back({d.at(0), d.at(1), d.at(2)});
  for (const auto& v : j.at("variables")) ds.variables.push_back(variable_from(v, where));
  ds.attrs = j.at("attrs");
  for (const auto& u : j.at("unsupported")) ds.unsupported.emplace_back(u.at(0), u.at(1));
  ds.group = j.at("group");
  ds.groups = j.at("groups").get<std::vector<std::string>>();
  return ds;
}

}  // namespace zp
