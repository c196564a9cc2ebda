#include "source/reference_writer.hpp"

#include <filesystem>

#include "core/error.hpp"
#include "core/json_nonfinite.hpp"
#include "core/text_codec.hpp"
#include "source/chunk_reader.hpp"
#include "store/store_table.hpp"

namespace zp {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

std::string text(const Bytes& b) {
  return std::string(b.begin(), b.end());
}

// Inline bytes as kerchunk writes them: the raw text when it is ASCII, else base64.
std::string inline_value(const Bytes& b) {
  for (unsigned char c : b)
    if (c >= 0x80) return "base64:" + encode_base64(b);
  return text(b);
}

// .zarray filters and compressor from the codec chain (encode order): the last bytes→bytes codec
// is the compressor. A fletcher32 applied last is dropped (its 4 bytes are cut from each reference,
// as kerchunk does: `strip`); applied first, as netCDF-C does, it stays a filter: numcodecs' name
// for HDF5's checksum (numcodecs 0.12 and later read it).
void codecs_of(const Variable& v, json& filters, json& compressor, bool& order_f, uint64_t& strip,
               const std::string& where) {
  std::vector<CodecSpec> chain = v.codecs;
  strip = 0;
  if (!chain.empty() && chain.back().id == "fletcher32") {
    chain.pop_back();
    strip = 4;
  }
  order_f = false;
  filters = json::array();
  compressor = nullptr;
  for (std::size_t i = 0; i < chain.size(); ++i) {
    const std::string& id = chain[i].id;
    if (id == "order_f") {
      if (i != 0) throw Error::source(where, "Fortran order after a filter cannot be written");
      order_f = true;
      continue;
    }
    if (id == "hdf5_lz4" || id == "vlen-utf8" || id == "vlen-bytes")
      throw Error::source(where,
                          "codec '" + id + "' has no numcodecs form a reference set can name");
    const bool last = i + 1 == chain.size();
    if (last && codec_kind(id) == CodecKind::BytesToBytes)
      compressor = chain[i].config;
    else
      filters.push_back(chain[i].config);
  }
}

bool is_regular(const Variable& v) {
  return ChunkGrid::regular(v.shape, v.grid.chunk_shape).edges == v.grid.edges;
}

// A coordinate joined across files of a length other than its chunk size: its values, decoded,
// held inline as one chunk (as kerchunk's MultiZarrToZarr inlines joined coordinates).
constexpr int64_t kMaxInlineCoordinate = 64 << 20;

// How a run of files lays out its chunks, for messages: "chunks [5,4,5], codecs zlib".
std::string layout_text(const Variable::LayoutRun& r) {
  std::string shape, codecs;
  for (const int64_t n : r.chunk_shape) shape += (shape.empty() ? "" : ",") + std::to_string(n);
  for (const auto& c : r.codecs) codecs += (codecs.empty() ? "" : "+") + c.id;
  return "chunks [" + shape + "], codecs " + (codecs.empty() ? "none" : codecs);
}

[[noreturn]] void refuse_layout_runs(const Dataset& ds, const Variable& v,
                                     const std::string& where) {
  const auto& r = v.layout_runs[1];
  const std::string other = r.first_file < ds.files.size() ? ds.files[r.first_file] : "";
  throw Error::source(where, "the files lay out its chunks differently (" + other + ": " +
                                 layout_text(r) +
                                 "; the first file: " + layout_text(v.layout_runs[0]) +
                                 "); a kerchunk reference set (version 1) holds one chunk "
                                 "shape and one codec chain per array: cache the files instead");
}

}  // namespace

json reference_set_of(const Dataset& ds, const RefsOptions& opt) {
  namespace fs = std::filesystem;
  SourceAccess access(ds.access);
  // Keyed by a sorted map: an ordered_json's linear key search made 50,000 keys quadratic.
  json refs = json::object();
  refs[".zgroup"] = "{\"zarr_format\":2}";
  refs[".zattrs"] = dump_python_json(ds.attrs.is_object() ? ds.attrs : ojson::object());
  std::vector<std::string> paths;
  for (const auto& f : ds.files) {
    std::string p = f;
    if (!is_remote(f)) {
      p = fs::absolute(local_path_of(f)).lexically_normal().string();
      if (opt.relative)
        p = fs::path(p).lexically_relative(fs::absolute(opt.out_dir)).generic_string();
    }
    paths.push_back(p);
  }
  for (const auto& v : ds.variables) {
    const std::string where = v.origin + ", variable '" + v.name + "'";
    if (!v.object_codec.empty() || !v.dtype.numeric()) {
      if (v.dtype.kind != 'b')
        throw Error::source(
            where, "text variables (" + v.dtype.str() + ") are not written to reference sets yet");
    }
    if (!v.encoding_runs.empty()) {
      const auto& r = v.encoding_runs[0];
      const std::string other = r.first_file < ds.files.size() ? ds.files[r.first_file] : "";
      throw Error::source(where, "the files encode it differently (" + other +
                                     " has its own scale_factor, add_offset or fill value); a "
                                     "reference set holds one encoding for all of them");
    }
    if (!is_regular(v) || !v.layout_runs.empty()) {
      if ((v.ndim() != 1 || v.num_elements() * v.dtype.size > kMaxInlineCoordinate) &&
          v.layout_runs.size() > 1)
        refuse_layout_runs(ds, v, where);
      if (v.ndim() != 1 || v.num_elements() * v.dtype.size > kMaxInlineCoordinate)
        throw Error::source(where,
                            "the joined files make the chunk grid irregular (files of "
                            "different lengths along the join); a reference set needs one "
                            "chunk size");
      ChunkReader reader(ds);
      const Bytes values = read_whole_1d(reader, v);
      const json zarray = {
          {"chunks", v.shape},          {"compressor", nullptr}, {"dtype", v.dtype.native().str()},
          {"fill_value", v.fill_value}, {"filters", nullptr},    {"order", "C"},
          {"shape", v.shape},           {"zarr_format", 2}};
      refs[v.name + "/.zarray"] = dump_python_json(zarray);
      ojson zattrs = ojson::object();
      zattrs["_ARRAY_DIMENSIONS"] = v.dims;
      for (const auto& [k, a] : v.attrs.items()) zattrs[k] = a;
      refs[v.name + "/.zattrs"] = dump_python_json(zattrs);
      refs[v.name + "/0"] = "base64:" + encode_base64(values);
      continue;
    }
    json filters, compressor;
    bool order_f = false;
    uint64_t strip = 0;
    codecs_of(v, filters, compressor, order_f, strip, where);
    json fill = v.fill_value;
    const json zarray = {{"chunks", v.grid.chunk_shape},
                         {"compressor", compressor},
                         {"dtype", v.dtype.str()},
                         {"fill_value", fill},
                         {"filters", filters.empty() ? json(nullptr) : filters},
                         {"order", order_f ? "F" : "C"},
                         {"shape", v.shape},
                         {"zarr_format", 2}};
    refs[v.name + "/.zarray"] = dump_python_json(zarray);
    ojson zattrs = ojson::object();
    zattrs["_ARRAY_DIMENSIONS"] = v.dims;
    for (const auto& [k, a] : v.attrs.items()) zattrs[k] = a;
    refs[v.name + "/.zattrs"] = dump_python_json(zattrs);
    for (int64_t idx = 0; idx < v.grid.num_chunks(); ++idx) {
      const ChunkRef& r = v.chunks[static_cast<std::size_t>(idx)];
      if (r.kind == ChunkRef::Kind::Missing) continue;
      const auto c = v.grid.coords(idx);
      std::string key = v.name + "/";
      for (std::size_t d = 0; d < c.size(); ++d) key += (d ? "." : "") + std::to_string(c[d]);
      if (c.empty()) key += "0";
      if (r.filter_mask)
        throw Error::source(ds.files[r.file] + ", variable '" + v.name + "', chunk " + key,
                            "HDF5 skipped a filter for this chunk (filter mask " +
                                std::to_string(r.filter_mask) + "): a reference set cannot say so");
      if (r.kind == ChunkRef::Kind::Inline) {
        refs[key] = inline_value(*r.data);
        continue;
      }
      if (r.length < strip)
        throw Error::source(ds.files[r.file], "chunk " + key + " shorter than its checksum");
      const uint64_t length = r.length - strip;
      if (opt.inline_threshold > 0 && length < static_cast<uint64_t>(opt.inline_threshold)) {
        const std::string& f = ds.files[r.file];
        refs[key] = inline_value(access.reader(f, ds.access.data_role()).read(f, r.offset, length));
        continue;
      }
      refs[key] = json::array({paths[r.file], r.offset, length});
    }
  }
  json out = json::object();
  out["version"] = 1;
  out["refs"] = std::move(refs);
  // Ours: `refs` replaces only a file that carries this mark (readers ignore unknown keys).
  out["zarr_parallel"] = {{"tool_version", ZP_VERSION}};
  return out;
}

}  // namespace zp
