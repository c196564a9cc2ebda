#include "source/netcdf_source.hpp"

#include <fcntl.h>
#include <hdf5.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>

#include "core/cf_time.hpp"
#include "core/dtype_dispatch.hpp"
#include "core/error.hpp"
#include "core/json_nonfinite.hpp"
#include "source/dataset_json.hpp"
#include "source/netcdf3/netcdf3_reader.hpp"
#include "source/netcdf4/hdf5_readable_driver.hpp"
#include "source/netcdf4/netcdf4_reader.hpp"
#include "source/scan_cache.hpp"
#include "source/scan_child.hpp"
#include "store/file_reader.hpp"
#include "store/secrets_channel.hpp"

namespace zp {

namespace {

using OpenedFile = ScanPart;

// NetCDF-4 (HDF5) files are described through HDF5 alone, one open each (netcdf4_reader.hpp);
// netCDF-3 files from their header (netcdf3_reader.hpp).
OpenedFile open_one(const std::string& path, const std::string& group) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  if (H5Fis_hdf5(path.c_str()) <= 0) {
    FileReader reader;
    const ObjectInfo info = reader.info(path);
    if (!info.exists) throw Error::source_missing(path, "no such file");
    if (is_netcdf3(reader.read(path, 0, std::min<uint64_t>(4, info.size))))
      return describe_netcdf3(reader, path, info.size, group);
    throw Error::source(path, "not a NetCDF file (neither NetCDF-4/HDF5 nor NetCDF-3)");
  }
  const hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
#if H5_VERSION_GE(1, 10, 7)
  // Sources are only read, and one changed under a run is caught by its fingerprint: HDF5's lock
  // adds nothing, and fails where the file system has no locks (NFS without its lock daemon).
  H5Pset_file_locking(fapl, false, true);
#endif
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl);
  H5Pclose(fapl);
  if (file < 0) throw Error::source(path, "HDF5 cannot open the file");
  struct Closer {
    hid_t id;
    ~Closer() { H5Fclose(id); }
  } closer{file};
  return describe_netcdf4(file, path, group);
}

bool is_netcdf3_file(const std::string& path) {
  FileReader reader;
  const ObjectInfo info = reader.info(path);
  return info.exists && info.size >= 4 && is_netcdf3(reader.read(path, 0, 4));
}

// One file described where a libhdf5 crash or hang cannot end this process: HDF5 files in a child
// (scan_child.hpp); netCDF-3 files here (our own parser, fuzzed), and everything here when no
// child can run (the library without the command beside it). The part goes into `cache`.
OpenedFile describe_isolated(const std::string& path, const std::string& group, PartCache& cache) {
  if (scan_executable().empty() || is_netcdf3_file(path)) {
    const auto before = file_state(path);
    OpenedFile part = open_one(path, group);
    cache.put(path, part, before);
    return part;
  }
  if (!cache.put_lines(describe_in_child(path, group)))
    throw Error::internal(path + ": the scanner's description is malformed");
  auto part = cache.get(path);
  if (!part) throw Error::source(path, "the file changed while it was being described");
  return std::move(*part);
}

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

namespace {

// Many files not in the cache: scanned by K child processes (HDF5 and netCDF-C are not
// thread-safe; `zarr-parallel scan-parts`) that print their parts (part_lines) to a pipe. A file a
// child could not scan is left out and scanned again here, which names it in its own error.
// Joins parts along concat_dim: part i holds files[first_file[i]] and those up to the next part's.
Dataset join_parts(std::vector<OpenedFile> scanned, const std::vector<std::string>& files,
                   const std::vector<std::size_t>& first_file, const std::string& concat_dim,
                   const std::string& uri);
std::string resolve_concat_dim(const Dataset& first, const std::string& concat_dim_in,
                               const std::vector<std::string>& files, const std::string& uri);

constexpr std::size_t kParallelScanMin = 8;
constexpr const char* kJoinedMarker = "#joined";  // scan-parts --join: the joined dataset follows

// On unless ZP_PARALLEL_SCAN=0 (and when the program can run itself as a scanner).
bool parallel_scan_on() {
  const char* on = std::getenv("ZP_PARALLEL_SCAN");
  return !(on && std::string(on) == "0") && !scan_executable().empty();
}

// How many children scan `n` files: one per core (at most 8), at least 4 files each.
std::size_t scan_children_for(std::size_t n) {
  const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
  return std::min<std::size_t>({cores, 8, n / 4});
}

// The length of the complete parts (three lines each, see part_lines) at the start of `out`.
std::size_t complete_parts(const std::string& out) {
  std::size_t lines = 0, end = 0;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (out[i] == '\n' && ++lines % 3 == 0) end = i + 1;
  return end;
}

struct ChildOutput {
  std::string out;
  bool ok = false;  // exited 0
};

// Runs `zarr-parallel scan-parts` on each run of files at once (with --join when `concat_dim` is
// set) and collects what each printed, draining all pipes as they fill.
std::vector<ChildOutput> run_scan_children(const std::vector<std::vector<std::string>>& runs,
                                           const std::string& group,
                                           const std::string& concat_dim) {
  struct Child {
    pid_t pid = -1;
    int fd = -1;
  };
  std::vector<Child> children;
  std::vector<ChildOutput> outputs(runs.size());
  // Each run's file names go through a list file: 175,000 paths exceed what argv may hold.
  std::vector<std::string> lists;
  struct ListRemover {
    std::vector<std::string>& paths;
    ~ListRemover() {
      for (const auto& p : paths) ::unlink(p.c_str());
    }
  } remover{lists};
  for (const auto& run : runs) {
    std::string list = std::filesystem::temp_directory_path().string() + "/zp-scan-" +
                       std::to_string(::getpid()) + "-" + std::to_string(lists.size());
    const int lfd = ::open(list.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (lfd < 0) break;  // the rest are scanned here instead
    lists.push_back(list);
    std::string names;
    for (const auto& f : run) names += f + '\0';
    const bool written =
        ::write(lfd, names.data(), names.size()) == static_cast<ssize_t>(names.size());
    ::close(lfd);
    if (!written) break;
    std::vector<std::string> args = {scan_executable(), "scan-parts", "--group", group,
                                     "--files-from",    list};
    if (!concat_dim.empty()) args.insert(args.end(), {"--join", "--concat-dim", concat_dim});
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) break;
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid = -1;
    const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      break;  // the rest are scanned here instead
    }
    children.push_back({pid, fds[0]});
  }
  std::vector<pollfd> polls;
  for (const auto& c : children) polls.push_back({c.fd, POLLIN, 0});
  std::size_t open_pipes = children.size();
  std::vector<char> buf(1 << 16);
  // A child that prints nothing for the scan time limit is killed (libhdf5 loops on some damaged
  // files); the files it did not finish are described one by one, each naming itself.
  using Clock = std::chrono::steady_clock;
  const auto limit = std::chrono::seconds(scan_timeout_seconds());
  std::vector<Clock::time_point> last(children.size(), Clock::now());
  while (open_pipes > 0) {
    if (::poll(polls.data(), polls.size(), 1000) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (std::size_t i = 0; i < polls.size(); ++i) {
      if (polls[i].fd < 0) continue;
      if (!(polls[i].revents & (POLLIN | POLLHUP | POLLERR))) {
        if (Clock::now() - last[i] > limit) ::kill(children[i].pid, SIGKILL);
        continue;
      }
      const ssize_t n = ::read(polls[i].fd, buf.data(), buf.size());
      if (n > 0) {
        outputs[i].out.append(buf.data(), static_cast<std::size_t>(n));
        last[i] = Clock::now();
      } else if (n == 0 || errno != EINTR) {
        ::close(polls[i].fd);
        polls[i].fd = -1;
        --open_pipes;
      }
    }
  }
  for (auto& p : polls)
    if (p.fd >= 0) ::close(p.fd);
  for (std::size_t i = 0; i < children.size(); ++i) {
    int status = 0;
    while (::waitpid(children[i].pid, &status, 0) < 0 && errno == EINTR) {
    }
    outputs[i].ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  return outputs;
}

// Files not in the cache, scanned by children (HDF5 and netCDF-C are not thread-safe) whose parts
// go into the cache; a file a child could not scan is left to describe_isolated, which names it.
void scan_in_children(const std::vector<std::string>& todo, const std::string& group,
                      PartCache& cache) {
  if (scan_executable().empty() || todo.size() < 2) return;  // one file is described alone
  // A few files (or ZP_PARALLEL_SCAN=0): one child for all, one process start instead of one each.
  std::size_t k = 1;
  if (parallel_scan_on() && todo.size() >= kParallelScanMin)
    k = std::max<std::size_t>(1, scan_children_for(todo.size()));
  std::vector<std::vector<std::string>> runs(k);
  for (std::size_t i = 0; i < todo.size(); ++i) runs[i % k].push_back(todo[i]);
  for (const auto& o : run_scan_children(runs, group, ""))
    cache.put_lines(o.out.substr(0, complete_parts(o.out)));
}

// A cold scan of many files: K children each scan a contiguous run of them and join it (so this
// process parses K joined descriptions, not one per file); their per-file parts go to the cache
// unparsed. nullopt when this does not apply or a child failed: then the per-file path runs and
// names the file that fails.
std::optional<Dataset> join_in_children(const std::vector<std::string>& files,
                                        const std::string& group, const std::string& concat_dim_in,
                                        const std::string& uri, PartCache& cache) {
  if (!parallel_scan_on() || files.size() < kParallelScanMin) return std::nullopt;
  for (const auto& f : files)
    if (cache.has(f)) return std::nullopt;  // a warm cache: the per-file path reads it
  const std::size_t k = scan_children_for(files.size() - 1);
  if (k < 2) return std::nullopt;
  OpenedFile first = describe_isolated(files[0], group, cache);
  const std::string concat_dim = resolve_concat_dim(first.ds, concat_dim_in, files, uri);
  std::vector<std::vector<std::string>> runs(k);
  std::vector<std::size_t> first_file = {0};
  const std::size_t n = files.size() - 1;
  for (std::size_t c = 0, at = 1; c < k; ++c) {
    const std::size_t len = n / k + (c < n % k ? 1 : 0);
    first_file.push_back(at);
    runs[c].assign(files.begin() + static_cast<std::ptrdiff_t>(at),
                   files.begin() + static_cast<std::ptrdiff_t>(at + len));
    at += len;
  }
  const auto outputs = run_scan_children(runs, group, concat_dim);
  std::vector<OpenedFile> parts;
  parts.push_back(std::move(first));
  bool complete = outputs.size() == runs.size();
  for (std::size_t c = 0; c < outputs.size(); ++c) {
    const std::string& out = outputs[c].out;
    complete = complete && outputs[c].ok;
    const auto marker = out.find(std::string("\n") + kJoinedMarker + '\n');
    cache.put_lines(out.substr(0, marker == std::string::npos ? complete_parts(out) : marker + 1));
    if (marker == std::string::npos || !complete) {
      complete = false;
      continue;
    }
    try {
      const auto body_at = marker + std::strlen(kJoinedMarker) + 2;
      OpenedFile part;
      part.ds = dataset_from_text(out.substr(body_at), runs[c][0]);
      // The join check compares each run's first file's coordinates with the first file's.
      if (auto head = cache.get_coords(runs[c][0])) part.coord_digests = std::move(*head);
      parts.push_back(std::move(part));
    } catch (const std::exception&) {
      complete = false;
    }
  }
  if (!complete) return std::nullopt;
  return join_parts(std::move(parts), files, first_file, concat_dim, uri);
}

// Every file's part: from the manifest cache when there and current, else from child scanners or
// scanned here, in the order of `files`.
std::vector<OpenedFile> scan_all(const std::vector<std::string>& files, const std::string& group,
                                 PartCache& cache) {
  std::vector<std::optional<OpenedFile>> got(files.size());
  std::vector<std::string> todo;
  for (std::size_t i = 0; i < files.size(); ++i) {
    got[i] = cache.get(files[i]);
    if (!got[i]) todo.push_back(files[i]);
  }
  if (!todo.empty()) {
    scan_in_children(todo, group, cache);
    for (std::size_t i = 0; i < files.size(); ++i) {
      if (got[i]) continue;
      got[i] = cache.get(files[i]);
      if (!got[i]) got[i] = describe_isolated(files[i], group, cache);
    }
  }
  std::vector<OpenedFile> out;
  out.reserve(files.size());
  for (auto& g : got) out.push_back(std::move(*g));
  return out;
}

}  // namespace

std::string scan_part_text(const std::string& path, const std::string& group) {
  const auto before = file_state(path);
  return part_lines(path, open_one(path, group), before);
}

void scan_and_join(const std::vector<std::string>& files, const std::string& group,
                   const std::string& concat_dim, std::ostream& out) {
  std::vector<OpenedFile> parts;
  std::vector<std::size_t> first_file;
  for (const auto& f : files) {
    const auto before = file_state(f);
    parts.push_back(open_one(f, group));
    first_file.push_back(first_file.size());
    out << part_lines(f, parts.back(), before);
  }
  const Dataset joined = join_parts(std::move(parts), files, first_file, concat_dim, "");
  out << kJoinedMarker << '\n' << dataset_text(joined) << '\n' << std::flush;
}

Dataset open_netcdf(const std::vector<std::string>& files, const std::string& concat_dim,
                    const std::string& uri, const std::string& group) {
  if (files.empty()) throw Error::source(uri, "no files match");
  const std::string key = files.size() > 1 ? join_key(uri, files, group, concat_dim) : "";
  if (auto joined = cached_join(key, files)) {
    joined->uri = uri;
    return std::move(*joined);
  }
  PartCache cache(uri, group);
  if (auto joined = join_in_children(files, group, concat_dim, uri, cache)) {
    cache.save(files);
    store_join(key, uri, files, group, concat_dim, *joined);
    return std::move(*joined);
  }
  std::vector<OpenedFile> parts = scan_all(files, group, cache);
  cache.save(files);
  std::vector<std::size_t> first_file(files.size());
  for (std::size_t i = 0; i < files.size(); ++i) first_file[i] = i;
  Dataset ds = join_parts(std::move(parts), files, first_file, concat_dim, uri);
  store_join(key, uri, files, group, concat_dim, ds);
  return ds;
}

namespace {

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

Dataset join_parts(std::vector<OpenedFile> scanned, const std::vector<std::string>& files,
                   const std::vector<std::size_t>& first_file, const std::string& concat_dim_in,
                   const std::string& uri) {
  OpenedFile& first = scanned[0];
  Dataset ds = std::move(first.ds);
  ds.uri = uri;
  const std::string concat_dim = resolve_concat_dim(ds, concat_dim_in, files, uri);
  std::vector<OpenedFile> rest(std::make_move_iterator(scanned.begin() + 1),
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

}  // namespace

namespace {

// A NetCDF-4/HDF5 file by URL, described here through the store interface (HDF5's own driver).
Dataset describe_hdf5_url(const std::string& url, const std::string& group, SourceAccess& access) {
  Readable& reader = access.reader(url, AccessRole::Target);
  const ObjectInfo info = reader.info(url);
  if (!info.exists) throw Error::source_missing(url, "no such object");
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  const hid_t file = open_hdf5_through(reader, url, info.size);
  struct Closer {
    hid_t id;
    ~Closer() { H5Fclose(id); }
  } closer{file};
  return describe_netcdf4(file, url, group).ds;
}

}  // namespace

Dataset open_netcdf_url(const std::string& url, const std::string& group, SourceAccess& access) {
  if (url.substr(0, url.find('?')).find_first_of("*[") != std::string::npos)  // '?': a query
    throw Error::source(url,
                        "globs are not expanded in URLs: give one file, or write a reference "
                        "set of the files (zarr-parallel refs) and give its URL");
  Readable& reader = access.reader(url, AccessRole::Target);
  const ObjectInfo info = reader.info(url);
  if (!info.exists) throw Error::source_missing(url, "no such object");
  const Bytes magic = reader.read(url, 0, std::min<uint64_t>(8, info.size));
  if (is_netcdf3(magic)) {
    ScanPart part = describe_netcdf3(reader, url, info.size, group);
    part.ds.uri = url;
    part.ds.access = access.options();
    part.ds.access.chunks_remote_role = false;
    return std::move(part.ds);
  }
  // libhdf5 reads what the server sent: in a child, where its crash or hang names the file.
  Dataset ds = scan_executable().empty()
                   ? describe_hdf5_url(url, group, access)
                   : dataset_from_text(
                         describe_url_in_child(url, group, access.options().transfer_text()), url);
  ds.uri = url;
  ds.access = access.options();
  ds.access.chunks_remote_role = false;
  return ds;
}

std::string describe_url_text(const std::string& url, const std::string& group,
                              const std::string& access_text) {
  const AccessOptions options = AccessOptions::from_transfer_text(access_text);
  guard_secrets(options);
  SourceAccess access(options);
  return dataset_text(describe_hdf5_url(url, group, access));
}

}  // namespace zp
