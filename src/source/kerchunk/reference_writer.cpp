#include "source/kerchunk/reference_writer.hpp"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "core/error.hpp"
#include "core/json_nonfinite.hpp"
#include "core/text_codec.hpp"
#include "source/chunk_reader.hpp"
#include "source/kerchunk/reference_chunks.hpp"
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
    if (id == "hdf5_lz4" || id == "szip" || id == "vlen-utf8" || id == "vlen-bytes")
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

// Paths as the reference set names the files: absolute, or relative to the output's folder.
std::vector<std::string> paths_of(const Dataset& ds, const RefsOptions& opt) {
  namespace fs = std::filesystem;
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
  return paths;
}

void put_attrs(json& refs, const Variable& v) {
  ojson zattrs = ojson::object();
  zattrs["_ARRAY_DIMENSIONS"] = v.dims;
  for (const auto& [k, a] : v.attrs.items()) zattrs[k] = a;
  refs[v.name + "/.zattrs"] = dump_python_json(zattrs);
}

// What no reference set holds, refused naming the variable.
void check_expressible(const Dataset& ds, const Variable& v, const std::string& where) {
  // Fixed-length bytes (char arrays) are held whole, inline: zarr reads |S n as xarray does.
  if (!v.object_codec.empty() || (!v.dtype.numeric() && v.dtype.kind != 'b' && v.dtype.kind != 'S'))
    throw Error::source(
        where, "text variables (" + v.dtype.str() + ") are not written to reference sets yet");
  if (!v.encoding_runs.empty()) {
    const auto& r = v.encoding_runs[0];
    const std::string other = r.first_file < ds.files.size() ? ds.files[r.first_file] : "";
    throw Error::source(where, "the files encode it differently (" + other +
                                   " has its own scale_factor, add_offset or fill value); a "
                                   "reference set holds one encoding for all of them");
  }
}

// A joined 1-D coordinate of irregular chunks: its values, decoded, inline as one chunk.
void put_inline_coordinate(json& refs, const Dataset& ds, const Variable& v,
                           const std::string& where) {
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
  put_attrs(refs, v);
  refs[v.name + "/0"] = "base64:" + encode_base64(values);
}

// The codecs as .zarray names them, and what chunk references must cut off.
struct ZarrayCodecs {
  json filters, compressor;
  bool order_f = false;
  uint64_t strip = 0;
  std::vector<CodecSpec> chain;  // what the .zarray applies (encode order), order_f left out
};

ZarrayCodecs put_zarray(json& refs, const Variable& v, const std::string& where) {
  ZarrayCodecs z;
  codecs_of(v, z.filters, z.compressor, z.order_f, z.strip, where);
  for (std::size_t i = 0; i + (z.strip ? 1 : 0) < v.codecs.size(); ++i)
    if (v.codecs[i].id != "order_f") z.chain.push_back(v.codecs[i]);
  const json zarray = {{"chunks", v.grid.chunk_shape},
                       {"compressor", z.compressor},
                       {"dtype", v.dtype.str()},
                       {"fill_value", v.fill_value},
                       {"filters", z.filters.empty() ? json(nullptr) : z.filters},
                       {"order", z.order_f ? "F" : "C"},
                       {"shape", v.shape},
                       {"zarr_format", 2}};
  refs[v.name + "/.zarray"] = dump_python_json(zarray);
  put_attrs(refs, v);
  return z;
}

std::string chunk_key(const Variable& v, int64_t idx) {
  const auto c = v.grid.coords(idx);
  std::string key = v.name + "/";
  for (std::size_t d = 0; d < c.size(); ++d) key += (d ? "." : "") + std::to_string(c[d]);
  if (c.empty()) key += "0";
  return key;
}

// Never-written chunks held inline cost this much of the reference set at most.
constexpr uint64_t kMaxNeverWrittenBytes = 64 << 20;

// The inline value every never-written chunk gets, or "" to leave their keys absent: when zarr's
// fill_value reads as the file and holding them would cost too much. Refused when it does not.
std::string never_written_value(const Variable& v, const ZarrayCodecs& z,
                                const std::string& where) {
  const auto chunk = never_written_chunk(v, z.chain, where);
  if (!chunk) return "";
  const auto missing =
      static_cast<uint64_t>(std::count_if(v.chunks.begin(), v.chunks.end(), [](const ChunkRef& r) {
        return r.kind == ChunkRef::Kind::Missing;
      }));
  if (missing * chunk->stored.size() <= kMaxNeverWrittenBytes) return inline_value(chunk->stored);
  if (chunk->absent_reads_right) return "";
  throw Error::source(where, std::to_string(missing) + " never-written chunks read as " +
                                 v.missing_chunk_value.dump() +
                                 ", not as its fill_value; held inline they would take more than " +
                                 std::to_string(kMaxNeverWrittenBytes >> 20) + " MiB");
}

struct ChunkWriting {
  const Dataset& ds;
  const RefsOptions& opt;
  const std::vector<std::string>& paths;
  SourceAccess& access;
};

void put_chunks(json& refs, const ChunkWriting& w, const Variable& v, const ZarrayCodecs& z,
                const std::string& where) {
  const std::string never_written = never_written_value(v, z, where);
  for (int64_t idx = 0; idx < v.grid.num_chunks(); ++idx) {
    const ChunkRef& r = v.chunks[static_cast<std::size_t>(idx)];
    const std::string key = chunk_key(v, idx);
    if (r.kind == ChunkRef::Kind::Missing) {
      if (!never_written.empty()) refs[key] = never_written;
      continue;
    }
    if (r.filter_mask)
      throw Error::source(w.ds.files[r.file] + ", variable '" + v.name + "', chunk " + key,
                          "HDF5 skipped a filter for this chunk (filter mask " +
                              std::to_string(r.filter_mask) + "): a reference set cannot say so");
    if (r.kind == ChunkRef::Kind::Inline) {
      refs[key] = inline_value(*r.data);
      continue;
    }
    if (r.length < z.strip)
      throw Error::source(w.ds.files[r.file], "chunk " + key + " shorter than its checksum");
    const uint64_t length = r.length - z.strip;
    const std::string& f = w.ds.files[r.file];
    if (w.opt.inline_threshold > 0 && length < static_cast<uint64_t>(w.opt.inline_threshold))
      refs[key] =
          inline_value(w.access.reader(f, w.ds.access.data_role()).read(f, r.offset, length));
    else
      refs[key] = json::array({w.paths[r.file], r.offset, length});
  }
}

void put_variable(json& refs, const ChunkWriting& w, const Variable& given) {
  const std::string where = given.origin + ", variable '" + given.name + "'";
  check_expressible(w.ds, given, where);
  if (!is_regular(given) || !given.layout_runs.empty()) {
    // Files laid out each their own way: only a 1-D coordinate, inline whole, can be held.
    const bool inlinable =
        given.ndim() == 1 && given.num_elements() * given.dtype.size <= kMaxInlineCoordinate;
    if (!inlinable && given.layout_runs.size() > 1) refuse_layout_runs(w.ds, given, where);
    return put_inline_coordinate(refs, w.ds, given, where);
  }
  const auto size_of = [&](uint32_t file) {
    const std::string& f = w.ds.files[file];
    return w.access.reader(f, w.ds.access.data_role()).info(f).size;
  };
  std::optional<Variable> whole = full_length_slabs(given, size_of, where);
  // GRIB messages (decode only): fill_value NaN, as cfgrib reads absent messages. Never-written
  // chunks are still refused (never_written_chunk): fsspec 2022.11 cannot read an absent key.
  if (!given.codecs.empty() && given.codecs[0].id == "grib" && given.fill_value.is_null()) {
    if (!whole) whole = given;
    whole->fill_value = given.missing_chunk_value;
  }
  const Variable& v = whole ? *whole : given;
  const ZarrayCodecs z = put_zarray(refs, v, where);
  put_chunks(refs, w, v, z, where);
}

}  // namespace

json reference_set_of(const Dataset& ds, const RefsOptions& opt) {
  SourceAccess access(ds.access);
  // Keyed by a sorted map: an ordered_json's linear key search made 50,000 keys quadratic.
  json refs = json::object();
  refs[".zgroup"] = "{\"zarr_format\":2}";
  refs[".zattrs"] = dump_python_json(ds.attrs.is_object() ? ds.attrs : ojson::object());
  const std::vector<std::string> paths = paths_of(ds, opt);
  const ChunkWriting w{ds, opt, paths, access};
  for (const auto& v : ds.variables) put_variable(refs, w, v);
  json out = json::object();
  out["version"] = 1;
  out["refs"] = std::move(refs);
  // Ours: `refs` replaces only a file that carries this mark (readers ignore unknown keys).
  out["zarr_parallel"] = {{"tool_version", ZP_VERSION}};
  return out;
}

}  // namespace zp
