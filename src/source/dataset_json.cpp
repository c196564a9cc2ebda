#include "source/dataset_json.hpp"

#include <fmt/format.h>

#include <limits>

#include "core/error.hpp"
#include "core/json_int.hpp"
#include "core/json_nonfinite.hpp"
#include "core/text_codec.hpp"

namespace zp {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

// A manifest: {"range": {"count": N, "packed": BASE64[, "filter_masks": true]},
// "inline": [[index, base64(, file)], ...]}; missing chunks are left out. The packed bytes hold,
// for each reference, LEB128 varints: the index as a zigzag delta from the previous index, the file
// from the previous file, the offset from where the previous reference ended (0 for chunks stored
// back to back), the length, and the filter mask when there are any. Every worker parses its plan's
// manifest before its first read: W3's 15,360 references were 400 KB of number columns (about half
// of a worker's start), packed they are one 60 KB string; a P1-sized plan shrinks the same way.
// Readers still take the column form and the array-per-reference form of earlier versions.
namespace packed {

void put(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

void put_signed(std::string& out, int64_t v) {
  put(out, (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
}

struct Reader {
  const Bytes& bytes;
  std::size_t at = 0;
  bool ok = true;
  uint64_t get() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at >= bytes.size()) {
        ok = false;
        return 0;
      }
      const unsigned char b = bytes[at++];
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    ok = false;  // more than ten bytes: not a varint we wrote
    return 0;
  }
  int64_t get_signed() {
    const uint64_t z = get();
    return static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1);
  }
};

}  // namespace packed

template <typename J>
J chunk_refs_json_as(const std::vector<ChunkRef>& chunks, const std::vector<int64_t>* only) {
  J inl = J::array();
  std::vector<int64_t> ranges;
  bool any_mask = false;
  auto add = [&](int64_t i) {
    const ChunkRef& r = chunks[static_cast<std::size_t>(i)];
    if (r.kind == ChunkRef::Kind::Range) {
      ranges.push_back(i);
      any_mask |= r.filter_mask != 0;
    } else if (r.kind == ChunkRef::Kind::Inline) {
      J entry = J::array({i, encode_base64(*r.data)});
      if (r.file != 0) entry.push_back(r.file);  // its file's layout (Variable::layout_runs)
      inl.push_back(std::move(entry));
    }
  };
  if (only)
    for (int64_t i : *only) add(i);
  else
    for (std::size_t i = 0; i < chunks.size(); ++i) add(static_cast<int64_t>(i));
  std::string bytes;
  bytes.reserve(ranges.size() * 6);
  int64_t prev_index = -1;
  uint32_t prev_file = 0;
  uint64_t prev_end = 0;
  for (const int64_t i : ranges) {
    const ChunkRef& r = chunks[static_cast<std::size_t>(i)];
    packed::put_signed(bytes, i - prev_index);
    packed::put_signed(bytes, static_cast<int64_t>(r.file) - static_cast<int64_t>(prev_file));
    packed::put_signed(bytes, static_cast<int64_t>(r.offset - prev_end));
    packed::put(bytes, r.length);
    if (any_mask) packed::put(bytes, r.filter_mask);
    prev_index = i;
    prev_file = r.file;
    prev_end = r.offset + r.length;
  }
  J range = J::object();
  range["count"] = ranges.size();
  range["packed"] = encode_base64(Bytes(bytes.begin(), bytes.end()));
  if (any_mask) range["filter_masks"] = true;
  J out = J::object();
  out["range"] = std::move(range);
  out["inline"] = std::move(inl);
  return out;
}

// Reads a manifest in any of its forms into `chunks`, which the grid sized; references outside
// it, or packed bytes that do not decode, are errors of `kind`.
template <typename J>
struct ChunkRefsReader {
  std::vector<ChunkRef>& chunks;
  const std::string& where;
  ErrorKind kind;

  Error fail(const std::string& what) const {
    return kind == ErrorKind::Config ? Error::config(where, what) : Error::source(where, what);
  }
  ChunkRef& slot(int64_t idx) const {
    if (idx < 0 || static_cast<std::size_t>(idx) >= chunks.size())
      throw fail("chunk index out of range");
    return chunks[static_cast<std::size_t>(idx)];
  }
  void set_range(const J& index, const J& file, const J& offset, const J& length,
                 const J* mask) const {
    ChunkRef& r = slot(index.template get<int64_t>());
    r.kind = ChunkRef::Kind::Range;
    r.file = file.template get<uint32_t>();
    r.offset = offset.template get<uint64_t>();
    r.length = length.template get<uint64_t>();
    r.filter_mask = mask ? mask->template get<uint32_t>() : 0;
  }
  void set_inline(const J& index, const J& base64, const J* file = nullptr) const {
    ChunkRef& r = slot(index.template get<int64_t>());
    r.kind = ChunkRef::Kind::Inline;
    r.file = file ? file->template get<uint32_t>() : 0;
    r.data = std::make_shared<Bytes>(decode_base64(base64.template get<std::string>(), where));
  }

  // The form before columns ([index, "range", file, offset, length, mask]): plans of stores
  // started by earlier versions, when resumed.
  void read_entries(const J& j) const {
    for (const auto& x : j) {
      const std::string& what = x.at(1).template get_ref<const std::string&>();
      if (what == "range")
        set_range(x.at(0), x.at(2), x.at(3), x.at(4), &x.at(5));
      else if (what == "inline")
        set_inline(x.at(0), x.at(2));
    }
  }

  void read_packed(const J& j, const J& range) const {
    const Bytes bytes = decode_base64(range.at("packed").template get<std::string>(), where);
    const uint64_t n = range.at("count").template get<uint64_t>();
    const bool masks = range.value("filter_masks", false);
    packed::Reader in{bytes};
    int64_t index = -1, file = 0;
    uint64_t end = 0;
    for (uint64_t k = 0; k < n && in.ok; ++k) {
      index += in.get_signed();
      file += in.get_signed();
      const uint64_t offset = end + static_cast<uint64_t>(in.get_signed());
      const uint64_t length = in.get();
      const uint64_t mask = masks ? in.get() : 0;
      if (!in.ok) break;
      ChunkRef& r = slot(index);
      if (file < 0 || file > std::numeric_limits<uint32_t>::max() ||
          mask > std::numeric_limits<uint32_t>::max())
        throw fail("packed chunk references are corrupt");
      r.kind = ChunkRef::Kind::Range;
      r.file = static_cast<uint32_t>(file);
      r.offset = offset;
      r.length = length;
      r.filter_mask = static_cast<uint32_t>(mask);
      end = offset + length;
    }
    if (!in.ok || in.at != bytes.size()) throw fail("packed chunk references are corrupt");
    for (const auto& x : j.at("inline"))
      set_inline(x.at(0), x.at(1), x.size() > 2 ? &x.at(2) : nullptr);
  }

  // Version 3's number columns.
  void read_columns(const J& j, const J& range) const {
    const J &index = range.at("index"), &file = range.at("file"), &offset = range.at("offset"),
            &length = range.at("length");
    const J* masks = range.contains("filter_mask") ? &range.at("filter_mask") : nullptr;
    const std::size_t n = index.size();
    if (file.size() != n || offset.size() != n || length.size() != n ||
        (masks && masks->size() != n))
      throw fail("chunk reference columns differ in length");
    for (std::size_t k = 0; k < n; ++k)
      set_range(index[k], file[k], offset[k], length[k], masks ? &(*masks)[k] : nullptr);
    for (const auto& x : j.at("inline")) set_inline(x.at(0), x.at(1));
  }

  void read(const J& j) const {
    if (j.is_array()) return read_entries(j);
    if (!j.is_object()) throw fail("chunk references are not an object");
    const J& range = j.at("range");
    if (range.contains("packed")) return read_packed(j, range);
    read_columns(j, range);
  }
};

template <typename J>
void chunk_refs_from_as(const J& j, std::vector<ChunkRef>& chunks, const std::string& where,
                        ErrorKind kind = ErrorKind::Source) {
  ChunkRefsReader<J>{chunks, where, kind}.read(j);
}

}  // namespace

json chunk_refs_json(const std::vector<ChunkRef>& chunks, const std::vector<int64_t>* only) {
  return chunk_refs_json_as<json>(chunks, only);
}
void chunk_refs_from(const json& j, std::vector<ChunkRef>& chunks, const std::string& where,
                     ErrorKind kind) {
  chunk_refs_from_as(j, chunks, where, kind);
}

namespace {

template <class J>
J layout_runs_json_as(const std::vector<Variable::LayoutRun>& runs) {
  J out = J::array();
  for (const auto& r : runs) {
    J codecs = J::array();
    for (const auto& c : r.codecs) codecs.push_back(J::parse(c.config.dump()));
    out.push_back(
        {{"first_file", r.first_file}, {"chunk_shape", r.chunk_shape}, {"codecs", codecs}});
  }
  return out;
}
template <class J>
void layout_runs_from_as(const J& runs, Variable& v, const std::string& where) {
  if (!runs.is_array()) throw Error::source(where, "layout_runs: not a list");
  for (const auto& r : runs) {
    Variable::LayoutRun run;
    run.first_file = r.at("first_file").template get<uint32_t>();
    run.chunk_shape = r.at("chunk_shape").template get<std::vector<int64_t>>();
    for (const auto& c : r.at("codecs"))
      run.codecs.push_back(codec_spec_from_json(json::parse(c.dump()), where));
    v.layout_runs.push_back(std::move(run));
  }
}

}  // namespace

json layout_runs_json(const std::vector<Variable::LayoutRun>& runs) {
  return layout_runs_json_as<json>(runs);
}
void layout_runs_from(const json& j, Variable& v, const std::string& where) {
  layout_runs_from_as(j, v, where);
}

ojson variable_json(const Variable& v) {
  json codecs = json::array();
  for (const auto& c : v.codecs) codecs.push_back(c.config);
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
  o["chunks"] = chunk_refs_json_as<ojson>(v.chunks, nullptr);
  o["origin"] = v.origin;
  o["object_codec"] = v.object_codec;
  if (!v.encoding_runs.empty()) {
    ojson runs = ojson::array();
    for (const auto& r : v.encoding_runs)
      runs.push_back({{"first_file", r.first_file},
                      {"attrs", r.attrs},
                      {"fill_value", ojson::parse(r.fill_value.dump())}});
    o["encoding_runs"] = std::move(runs);
  }
  if (!v.layout_runs.empty()) o["layout_runs"] = layout_runs_json_as<ojson>(v.layout_runs);
  return o;
}

namespace {

// A value as nlohmann::json; from an ordered document through its text, as before (a
// non-finite number there becomes null).
const json& plain(const json& x) {
  return x;
}
json plain(const ojson& x) {
  return json::parse(x.dump());
}

// Integers checked as json_int checks them, the error of `rules.kind` naming `where`.
template <class J>
std::vector<int64_t> ints_from(const J& list, const std::string& where, const std::string& field,
                               const FieldRules& rules, int64_t lo = INT64_MIN) {
  auto fail = [&](const std::string& what) {
    return rules.kind == ErrorKind::Config ? Error::config(where, what)
                                           : Error::source(where, what);
  };
  if (!list.is_array()) throw fail(field + ": not a list");
  std::vector<int64_t> out;
  try {
    for (const auto& x : list) out.push_back(json_int(json(x), field, lo));
  } catch (const Error& e) {
    throw fail(e.what());
  }
  return out;
}

template <class J>
void shared_fields_from(const J& j, Variable& v, const std::string& where,
                        const FieldRules& rules) {
  const std::string& f = rules.field;
  v.name = j.at("name");
  v.dims = j.at("dims").template get<std::vector<std::string>>();
  v.shape = ints_from(j.at("shape"), where, f + ".shape", rules, 0);
  v.dtype = DType::parse(j.at("dtype"));
  for (const auto& c : j.at("codecs")) v.codecs.push_back(codec_spec_from_json(plain(c), where));
  v.grid.chunk_shape =
      ints_from(j.at("chunk_shape"), where, f + ".chunk_shape", rules, rules.min_chunk_extent);
  const J& edges = j.at("edges");
  if (!edges.is_array()) {
    const std::string what = f + ".edges: not a list";
    throw rules.kind == ErrorKind::Config ? Error::config(where, what) : Error::source(where, what);
  }
  for (std::size_t d = 0; d < edges.size(); ++d)
    v.grid.edges.push_back(ints_from(edges[d], where, fmt::format("{}.edges[{}]", f, d), rules));
  v.missing_chunk_value = plain(j.at("missing_chunk_value"));
  v.origin = j.value("origin", "");
}

}  // namespace

void variable_fields_from(const json& j, Variable& v, const std::string& where,
                          const FieldRules& rules) {
  shared_fields_from(j, v, where, rules);
}

Variable variable_from(const ojson& j, const std::string& where) {
  Variable v;
  shared_fields_from(j, v, where, {ErrorKind::Source, "variable", 0});
  v.attrs = j.at("attrs");
  v.fill_value = plain(j.at("fill_value"));
  v.chunks.assign(static_cast<std::size_t>(v.grid.num_chunks()), ChunkRef{});
  chunk_refs_from_as(j.at("chunks"), v.chunks, where);
  v.object_codec = j.value("object_codec", "");
  if (j.contains("encoding_runs"))
    for (const auto& r : j.at("encoding_runs"))
      v.encoding_runs.push_back(
          {r.at("first_file").get<uint32_t>(), r.at("attrs"), plain(r.at("fill_value"))});
  if (j.contains("layout_runs")) layout_runs_from_as(j.at("layout_runs"), v, where);
  if (const std::string fault = v.layout_fault(); !fault.empty())
    throw Error::source(where, "variable '" + v.name + "': " + fault);
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
