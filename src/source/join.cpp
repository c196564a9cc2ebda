#include "source/join.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>
#include <utility>

#include "core/cf_time.hpp"
#include "core/dtype_dispatch.hpp"
#include "core/error.hpp"
#include "core/json_nonfinite.hpp"
#include "source/char_arrays.hpp"

namespace zp {

namespace {

// Checks that `part` can follow `first` along axis `a` (same dtype, other dims and their
// chunking). Chunking along `a` and codecs may differ: the join keeps them per file (LayoutRun).
void check_joinable(const Variable& first, const Variable& part, std::size_t a,
                    const std::string& path) {
  const std::string where = path + ", variable '" + part.name + "'";
  if (!(part.dtype == first.dtype))
    throw Error::source(where, "dtype differs from the first file's");
  // xarray reads each file's bytes with its own _Unsigned (as uint8 or int8, then joined as
  // int16); the join has one, so files that differ are refused, not read with the first's.
  auto unsigned_of = [](const Variable& v) {
    return v.attrs.contains("_Unsigned") ? v.attrs["_Unsigned"].dump() : std::string("none");
  };
  if (unsigned_of(part) != unsigned_of(first))
    throw Error::source(where, "_Unsigned " + unsigned_of(part) +
                                   " differs from the first file's " + unsigned_of(first) +
                                   "; files are joined with one signedness");
  if (part.ndim() != first.ndim())
    throw Error::source(where, "dimensions differ from the first file's");
  for (std::size_t d = 0; d < first.ndim(); ++d) {
    if (d == a) continue;
    if (part.shape[d] != first.shape[d])
      throw Error::source(where, "dimension '" + part.dims[d] + "' has a different length");
    if (part.grid.chunk_shape[d] != first.grid.chunk_shape[d])
      throw Error::source(where, "chunk shape along '" + part.dims[d] + "' (" +
                                     std::to_string(part.grid.chunk_shape[d]) +
                                     ") differs from the first file's (" +
                                     std::to_string(first.grid.chunk_shape[d]) +
                                     "); files may be chunked differently only along the "
                                     "dimension they are joined along");
  }
}

using LayoutRun = Variable::LayoutRun;

bool same_layout(const LayoutRun& x, const LayoutRun& y) {
  if (x.chunk_shape != y.chunk_shape || x.codecs.size() != y.codecs.size()) return false;
  for (std::size_t i = 0; i < x.codecs.size(); ++i)
    if (x.codecs[i].id != y.codecs[i].id || x.codecs[i].config != y.codecs[i].config) return false;
  return true;
}

// Where the parts' chunk layout (shape, codecs) changes from one file to the next, as runs (see
// LayoutRun); empty when every file is laid out as the first. Part f's files are numbered from
// file_offset[f].
std::vector<LayoutRun> join_layouts(const std::vector<const Variable*>& parts,
                                    const std::vector<std::size_t>& file_offset) {
  std::vector<LayoutRun> runs;
  auto add = [&](LayoutRun r) {
    if (!runs.empty() && same_layout(r, runs.back())) return;
    runs.push_back(std::move(r));
  };
  for (std::size_t f = 0; f < parts.size(); ++f) {
    const auto offset = static_cast<uint32_t>(file_offset[f]);
    if (parts[f]->layout_runs.empty()) add({offset, parts[f]->grid.chunk_shape, parts[f]->codecs});
    for (LayoutRun r : parts[f]->layout_runs) {
      r.first_file += offset;
      add(std::move(r));
    }
  }
  if (runs.size() == 1) runs.clear();
  return runs;
}

using EncodingRun = Variable::EncodingRun;

// How the files from `file` on decode `v`: its decoding attributes and fill value.
EncodingRun encoding_of(const Variable& v, uint32_t file) {
  EncodingRun r{file, Attrs::object(), v.fill_value};
  for (const char* k : Variable::kDecodingAttrs)
    if (v.attrs.contains(k)) r.attrs[k] = v.attrs[k];
  return r;
}

bool same_encoding(const EncodingRun& a, const EncodingRun& b) {
  // As text: a NaN missing_value equals itself.
  return dump_python_json(a.attrs) == dump_python_json(b.attrs) &&
         a.fill_value.dump() == b.fill_value.dump();
}

// Where the parts' CF decoding changes from one file to the next, as runs (see EncodingRun); part
// f's files are numbered from file_offset[f].
std::vector<EncodingRun> join_encodings(const std::vector<const Variable*>& parts,
                                        const std::vector<std::size_t>& file_offset) {
  std::vector<EncodingRun> runs = parts[0]->encoding_runs;
  EncodingRun current = runs.empty() ? encoding_of(*parts[0], 0) : runs.back();
  auto add = [&](EncodingRun r) {
    if (same_encoding(r, current)) return;
    current = r;
    runs.push_back(std::move(r));
  };
  for (std::size_t f = 1; f < parts.size(); ++f) {
    const auto offset = static_cast<uint32_t>(file_offset[f]);
    add(encoding_of(*parts[f], offset));
    for (EncodingRun r : parts[f]->encoding_runs) {
      r.first_file += offset;
      add(std::move(r));
    }
  }
  return runs;
}

std::string attr_text(const Variable& v, const char* key) {
  return v.attrs.contains(key) && v.attrs[key].is_string() ? v.attrs[key].get<std::string>() : "";
}

// A time variable's values are numbers in its file's units; files written with their own
// reference date ("hours since <the file's first day>") cannot be joined as numbers.
// The coordinate of concat_dim is converted instead where its values are known (in_units_of).
void check_same_time_units(const Variable& first, const Variable& part, const std::string& path) {
  const std::string units = attr_text(first, "units");
  if (!is_time_units(units)) return;
  const bool coordinate = first.ndim() == 1 && first.dims[0] == first.name;
  for (const char* k : {"units", "calendar"})
    if (attr_text(part, k) != attr_text(first, k))
      throw Error::source(path + ", variable '" + part.name + "'",
                          std::string(k) + " '" + attr_text(part, k) +
                              "' differ from the first file's '" + attr_text(first, k) + "'; " +
                              (coordinate ? "the coordinate of concat_dim is converted to the "
                                            "first file's units only where the scan keeps its "
                                            "values (NetCDF-4 files joined along their "
                                            "unlimited dimension)"
                                          : "only the coordinate of concat_dim is converted to "
                                            "the first file's units"));
}

// Joins the parts' variables along axis `a` in one pass over all their chunks; part f's files are
// numbered from file_offset[f] in the joined dataset.
Variable join_along(const std::vector<const Variable*>& parts, std::size_t a,
                    const std::vector<std::size_t>& file_offset) {
  Variable joined = *parts[0];
  joined.shape[a] = 0;
  joined.grid.edges[a] = {0};
  std::vector<int64_t> chunk_offset;  // first joined chunk index of each part along a
  for (const Variable* p : parts) {
    chunk_offset.push_back(static_cast<int64_t>(joined.grid.edges[a].size()) - 1);
    for (std::size_t k = 1; k < p->grid.edges[a].size(); ++k)
      joined.grid.edges[a].push_back(p->grid.edges[a][k] + joined.shape[a]);
    joined.shape[a] += p->shape[a];
  }
  joined.encoding_runs = join_encodings(parts, file_offset);
  joined.layout_runs = join_layouts(parts, file_offset);
  for (const LayoutRun& r : joined.layout_runs)  // buffers are sized by the largest
    for (std::size_t d = 0; d < joined.ndim(); ++d)
      joined.grid.chunk_shape[d] = std::max(joined.grid.chunk_shape[d], r.chunk_shape[d]);
  joined.chunks.assign(static_cast<std::size_t>(joined.grid.num_chunks()), ChunkRef{});
  for (std::size_t f = 0; f < parts.size(); ++f) {
    const Variable& p = *parts[f];
    for (int64_t idx = 0; idx < p.grid.num_chunks(); ++idx) {
      std::vector<int64_t> c = p.grid.coords(idx);
      c[a] += chunk_offset[f];
      ChunkRef ref = p.chunks[static_cast<std::size_t>(idx)];
      ref.file += static_cast<uint32_t>(file_offset[f]);
      joined.chunks[static_cast<std::size_t>(joined.grid.linear_index(c))] = std::move(ref);
    }
  }
  return joined;
}

// The native values of part `p`'s 1-D coordinate `pv`, when known without reading a chunk: kept by
// its scan (join_values), or held whole (an earlier join's result: a child's run of files).
const Bytes* join_values_of(const ScanPart& p, const Variable& pv) {
  const auto it = p.join_values.find(pv.name);
  if (it != p.join_values.end()) return &it->second;
  return pv.dtype.big_endian ? nullptr : pv.held_whole();
}

// Float `x` in `from` units as a value of `to` units, refused when that value (as the type holds
// it) is another instant than `x` by more than a double's rounding (float32 seconds since 1970
// hold 64 s steps: xarray decodes each file's own numbers exactly).
template <class T>
T float_in_units(T x, const CfTimeUnits& from, const CfTimeUnits& to, const std::string& where,
                 const std::string& from_text, const std::string& to_text) {
  if (std::isnan(x)) return x;  // NaT to xarray in any units
  const double us = static_cast<double>(x) * static_cast<double>(from.unit_us) +
                    static_cast<double>(from.reference_us - to.reference_us);
  const T y = static_cast<T>(us / static_cast<double>(to.unit_us));
  const double y_us = static_cast<double>(y) * static_cast<double>(to.unit_us);
  if (std::abs(y_us - us) <= 1e-12 * std::abs(us) + 1) return y;  // a double's rounding, no more
  throw Error::source(where, "value " + std::to_string(x) + " " + from_text + " has no exact " +
                                 std::string(sizeof(T) == 4 ? "float32" : "float64") +
                                 " value in " + to_text);
}

// Files whose time units xarray cannot decode keep their numbers (in_units_of); not when only
// `part_units` are: its numbers would read as the first file's dates.
void refuse_if_only_part_undecodable(const std::string& units, const std::string& calendar,
                                     const std::string& part_units, const std::string& where) {
  try {
    parse_time_units(units, calendar, where);
  } catch (const Error&) {
    return;
  }
  throw Error::source(where, "units '" + part_units +
                                 "' are no time xarray decodes, while the first file's '" + units +
                                 "' are: its values cannot be joined as times");
}

// Converts `n` values of `part`'s time coordinate in place to `first`'s units, as xarray's
// concatenation of the decoded times written with the first file's encoding holds them (files
// that each count "hours since" their own first day). Nothing when the units are equal or not
// time units; refused when the calendars differ or a value has no exact value in the new units.
void in_units_of(const Variable& first, const Variable& part, unsigned char* values, std::size_t n,
                 const std::string& path) {
  const std::string units = attr_text(first, "units"), calendar = attr_text(first, "calendar");
  const std::string part_units = attr_text(part, "units");
  if (!is_time_units(units) || (part_units == units && attr_text(part, "calendar") == calendar))
    return;
  const std::string where = path + ", variable '" + part.name + "'";
  for (const Variable* v : {&first, &part})
    if (v->attrs.contains("scale_factor") || v->attrs.contains("add_offset"))
      throw Error::source(where, "units '" + part_units + "' differ from the first file's '" +
                                     units +
                                     "' and the times are packed (scale_factor, "
                                     "add_offset): their stored numbers cannot be converted");
  if (attr_text(part, "calendar") != calendar || !is_time_units(part_units))
    throw Error::source(
        where, "units '" + part_units + "' calendar '" + attr_text(part, "calendar") +
                   "' differ from the first file's '" + units + "' calendar '" + calendar + "'");
  CfTimeUnits to, from;
  try {
    to = parse_time_units(units, calendar, where);
    from = parse_time_units(part_units, calendar, where);
  } catch (const Error&) {
    // Not decodable ('months since' outside 360_day, 'years since'): xarray keeps each file's
    // numbers as they are (with a warning) and joins them; so do we (the plan notes it).
    refuse_if_only_part_undecodable(units, calendar, part_units, where);
    return;
  }
  visit_numeric(first.dtype.native(), [&](auto zero) {
    using T = decltype(zero);
    for (std::size_t i = 0; i < n; ++i) {
      T x;
      std::memcpy(&x, values + i * sizeof(T), sizeof(T));
      if constexpr (std::is_floating_point_v<T>) {
        x = float_in_units(x, from, to, where, part_units, units);
      } else {
        // us = x * from.unit + from.reference - to.reference, then whole units of `to`.
        int64_t us = 0, shift = 0;
        const bool fits = !(std::is_unsigned_v<T> && static_cast<uint64_t>(x) > INT64_MAX) &&
                          !__builtin_mul_overflow(static_cast<int64_t>(x), from.unit_us, &us) &&
                          !__builtin_sub_overflow(from.reference_us, to.reference_us, &shift) &&
                          !__builtin_add_overflow(us, shift, &us);
        const int64_t y = fits ? us / to.unit_us : 0;
        if (!fits || us % to.unit_us != 0 || !std::in_range<T>(y))
          throw Error::source(where, "value " + std::to_string(x) + " " + part_units +
                                         " is no whole number of " + units);
        x = static_cast<T>(y);
      }
      std::memcpy(values + i * sizeof(T), &x, sizeof(T));
    }
  });
}

// The coordinate of the join dimension, held inline as one chunk of its joined values (as
// kerchunk's MultiZarrToZarr inlines it) when every part's values are known: then neither planning
// nor writing it opens a file again. nullopt otherwise, and on any mismatch, which the general path
// reports naming the file.
std::optional<Variable> join_by_values(const Variable& v, const ScanPart& first,
                                       const std::vector<ScanPart>& rest,
                                       const std::vector<std::string>& part_files) {
  if (v.ndim() != 1 || v.dims[0] != v.name || !v.dtype.numeric() || !v.object_codec.empty())
    return std::nullopt;
  const DType t = v.dtype.native();
  const auto size = static_cast<std::size_t>(t.size);
  const EncodingRun encoding = encoding_of(v, 0);
  Bytes all;
  auto add = [&](const ScanPart& p, const Variable& pv, const std::string& path) {
    const Bytes* values = join_values_of(p, pv);
    if (!values || !(pv.dtype.native() == t) || !pv.encoding_runs.empty() ||
        !same_encoding(encoding_of(pv, 0), encoding) ||
        values->size() != static_cast<std::size_t>(pv.shape[0]) * size)
      return false;
    const std::size_t at = all.size();
    all.insert(all.end(), values->begin(), values->end());
    in_units_of(v, pv, all.data() + at, static_cast<std::size_t>(pv.shape[0]), path);
    return true;
  };
  if (!add(first, v, part_files[0])) return std::nullopt;
  for (std::size_t f = 0; f < rest.size(); ++f) {
    const ScanPart& r = rest[f];
    const Variable* pv = r.ds.find(v.name);
    if (!pv || pv->ndim() != 1 || !add(r, *pv, part_files[f + 1])) return std::nullopt;
  }
  Variable joined = v;
  joined.dtype = t;
  joined.shape[0] = static_cast<int64_t>(all.size() / size);
  joined.hold_whole(std::move(all));
  return joined;
}

// Text read whole (one inline chunk per file) joins into one inline chunk, as wide as the widest.
Variable join_whole_text(const std::vector<const Variable*>& parts, std::size_t a,
                         const std::vector<std::string>& files) {
  Variable joined = *parts[0];
  std::size_t width = 0, total = 0;
  for (std::size_t f = 0; f < parts.size(); ++f) {
    const Variable& p = *parts[f];
    if (p.dtype.kind != 'S' || p.ndim() != joined.ndim() || p.object_codec != joined.object_codec)
      throw Error::source(files[f],
                          "variable '" + p.name + "' differs in type from the first file's");
    for (std::size_t d = 0; d < p.ndim(); ++d)
      if (d != a && p.shape[d] != joined.shape[d])
        throw Error::source(files[f], "variable '" + p.name + "': dimension '" + p.dims[d] +
                                          "' has a different length");
    width = std::max(width, static_cast<std::size_t>(p.dtype.size));
  }
  joined.shape[a] = 0;
  for (const Variable* p : parts) joined.shape[a] += p->shape[a];
  std::size_t outer = 1, inner = 1;
  for (std::size_t d = 0; d < a; ++d) outer *= static_cast<std::size_t>(joined.shape[d]);
  for (std::size_t d = a + 1; d < joined.ndim(); ++d)
    inner *= static_cast<std::size_t>(joined.shape[d]);
  total = outer * static_cast<std::size_t>(joined.shape[a]) * inner * width;
  check_whole_text_size(total, joined.name);
  Bytes data(total, 0);
  std::size_t at = 0;
  for (std::size_t o = 0; o < outer; ++o)
    for (const Variable* p : parts) {
      const auto pw = static_cast<std::size_t>(p->dtype.size);
      const std::size_t n = static_cast<std::size_t>(p->shape[a]) * inner;
      if (n > 0 && !p->chunks.empty() && p->chunks[0].data) {
        const unsigned char* src = p->chunks[0].data->data() + o * n * pw;
        for (std::size_t i = 0; i < n; ++i)
          std::memcpy(data.data() + (at + i) * width, src + i * pw, pw);
      }
      at += n;
    }
  joined.dtype.size = static_cast<int>(std::max<std::size_t>(width, 1));
  joined.hold_whole(std::move(data));
  return joined;
}

}  // namespace

std::string resolve_concat_dim(const Dataset& first, const std::string& concat_dim_in,
                               const std::vector<std::string>& files, const std::string& uri) {
  std::string concat_dim = concat_dim_in;
  if (concat_dim.empty())
    for (const auto& d : first.dims)
      if (d.unlimited) concat_dim = d.name;
  if (files.size() > 1 && concat_dim.empty())
    throw Error::config("concat_dim", "several files match '" + uri +
                                          "' but they have no unlimited dimension: set concat_dim");
  if (files.size() > 1 && !first.find_dim(concat_dim))
    throw Error::config("concat_dim", "dimension '" + concat_dim + "' not in " + files[0]);
  return concat_dim;
}

Dataset join_parts(std::vector<ScanPart> scanned, const std::vector<std::string>& files,
                   const std::vector<std::size_t>& first_file, const std::string& concat_dim_in,
                   const std::string& uri) {
  ScanPart& first = scanned[0];
  Dataset ds = std::move(first.ds);
  ds.uri = uri;
  const std::string concat_dim = resolve_concat_dim(ds, concat_dim_in, files, uri);
  std::vector<ScanPart> rest(std::make_move_iterator(scanned.begin() + 1),
                             std::make_move_iterator(scanned.end()));
  ds.files = files;
  if (rest.empty()) return ds;
  std::vector<std::string> part_files;  // each part named by its first file
  for (std::size_t i : first_file) part_files.push_back(files[i]);
  for (auto& v : ds.variables) {
    const auto axis = std::find(v.dims.begin(), v.dims.end(), concat_dim);
    if (axis != v.dims.end()) {
      if (auto held = join_by_values(v, first, rest, part_files)) {
        v = std::move(*held);
        continue;
      }
    }
    std::vector<const Variable*> parts = {&v};
    for (std::size_t f = 0; f < rest.size(); ++f) {
      const Variable* pv = rest[f].ds.find(v.name);
      if (!pv)
        throw Error::source(part_files[f + 1],
                            "variable '" + v.name + "' of the first file is missing");
      if (axis != v.dims.end()) {
        if (v.dtype.kind != 'S') {
          check_joinable(v, *pv, static_cast<std::size_t>(axis - v.dims.begin()),
                         part_files[f + 1]);
          check_same_time_units(v, *pv, part_files[f + 1]);
        }
        parts.push_back(pv);
      } else if (first.coord_digests.count(v.name) &&
                 first.coord_digests[v.name] != rest[f].coord_digests[v.name]) {
        throw Error::source(part_files[f + 1],
                            "coordinate '" + v.name +
                                "' differs from the first file's; files can only be "
                                "joined along '" +
                                concat_dim + "'");
      }
    }
    if (axis != v.dims.end()) {
      const auto a = static_cast<std::size_t>(axis - v.dims.begin());
      v = v.dtype.kind == 'S' ? join_whole_text(parts, a, part_files)
                              : join_along(parts, a, first_file);
    }
  }
  for (auto& d : ds.dims)
    if (d.name == concat_dim)
      for (const auto& r : rest) d.size += r.ds.find_dim(concat_dim)->size;
  return ds;
}

}  // namespace zp
